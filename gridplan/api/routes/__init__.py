"""The service's routes, one :class:`fastapi.APIRouter` per resource.

:func:`gridplan.api.app.create_app` includes them in this order: :mod:`~.session` (health, login,
me), :mod:`~.admin` (users, tokens), :mod:`~.plans`, :mod:`~.uploads`, :mod:`~.jobs`,
:mod:`~.maps`.  Every route takes the service and the caller through dependencies
(:mod:`gridplan.api.deps`) and declares the permission it needs with ``require(...)``.
"""
