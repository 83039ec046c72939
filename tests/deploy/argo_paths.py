"""The two path languages of Argo Events, as far as a Sensor's filters and parameters use them.

gjson (reading: data filter `path`, parameter `src.dataKey`): keys separated by dots, `\\.` a
literal dot, `*` and `?` wildcards in a key (the first matching key wins), an array index as a
key, `#` an array's length. sjson (writing: parameter `dest`): the same keys, `\\.` a literal
dot, an index into an array. Values read as gjson's Result.String() renders them.
"""

import copy
import fnmatch
import json
import math
from decimal import Decimal

MISSING = object()


def split(path):
    parts, cur, i = [], "", 0
    while i < len(path):
        c = path[i]
        if c == "\\" and i + 1 < len(path):
            cur += "\\" + path[i + 1]
            i += 2
            continue
        if c == ".":
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    return parts


def _unescape(part):
    out, i = "", 0
    while i < len(part):
        if part[i] == "\\" and i + 1 < len(part):
            out += part[i + 1]
            i += 2
        else:
            out += part[i]
            i += 1
    return out


def _has_wildcard(part):
    i = 0
    while i < len(part):
        if part[i] == "\\":
            i += 2
            continue
        if part[i] in "*?":
            return True
        i += 1
    return False


def get(data, path):
    """gjson.Get: the value at path, or MISSING."""
    cur = data
    for part in split(path):
        if isinstance(cur, dict):
            if _has_wildcard(part):
                pattern = part.replace("\\*", "[*]").replace("\\?", "[?]")
                key = next((k for k in cur if fnmatch.fnmatchcase(k, pattern)), None)
                if key is None:
                    return MISSING
                cur = cur[key]
            else:
                key = _unescape(part)
                if key not in cur:
                    return MISSING
                cur = cur[key]
        elif isinstance(cur, list):
            if part == "#":
                cur = len(cur)
            elif part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                return MISSING
        else:
            return MISSING
    return cur


def as_string(value):
    """gjson Result.String(): strings as they are, integers as written, other numbers in
    strconv.FormatFloat(f, 'f', -1, 64) form, true/false, objects and arrays as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a JSON number: {value}")
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def as_float(value):
    """gjson Result.Float()."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def set_path(doc, path, value, operation=""):
    """sjson.Set with Argo's parameter operations (append, prepend, overwrite); returns a copy."""
    doc = copy.deepcopy(doc)
    parts = [_unescape(p) for p in split(path)]
    cur = doc
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(cur, list):
            cur = cur[int(part)]
        else:
            if part not in cur:
                cur[part] = [] if nxt.isdigit() else {}
            cur = cur[part]
    last = parts[-1]
    if isinstance(cur, list):
        idx = int(last)
        while len(cur) <= idx:
            cur.append(None)
        old = cur[idx]
    else:
        old = cur.get(last)
    if operation == "append" and isinstance(old, str):
        value = old + value
    elif operation == "prepend" and isinstance(old, str):
        value = value + old
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return doc
