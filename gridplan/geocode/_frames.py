"""``obj_frame``: DataFrames whose text columns stay NumPy ``object`` arrays.

pandas 3 infers its Arrow-backed ``str`` dtype for object arrays of strings; the geocoder's
intermediate tables would then be converted to Arrow and back at every step (measured: ~20 % of
the batch time at city scale).  Text columns stay ``object`` inside the geocoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def obj_frame(columns: Mapping[str, Any], index: Any = None) -> pd.DataFrame:
    """Build a DataFrame from arrays, keeping object arrays (text) as ``object`` dtype.

    Examples
    --------
    >>> obj_frame({"a": np.array(["x"], dtype=object), "b": np.array([1.5])}).dtypes.astype(str).tolist()
    ['object', 'float64']

    """
    data = {}
    for k, v in columns.items():
        arr = np.asarray(v) if not np.isscalar(v) else v
        if isinstance(arr, np.ndarray) and arr.dtype == object:
            data[k] = pd.Series(arr, dtype=object, index=index, copy=False)
        elif isinstance(arr, np.ndarray):
            data[k] = pd.Series(arr, index=index, copy=False)
        else:
            data[k] = v
    return pd.DataFrame(data, index=index)
