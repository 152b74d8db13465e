"""gridplan: one base grid from many departmental grids, and what a city's grid office does with it.

Merge departmental grids (:mod:`gridplan.merge`), geocode cases (:mod:`gridplan.geocode`), find
hot spots (:mod:`gridplan.hotspots`), staff and rebalance grids (:mod:`gridplan.balance`), and
publish offline maps (:mod:`gridplan.maps`).  DESIGN.md maps the rooms; the CLI is ``gridplan``.
"""
