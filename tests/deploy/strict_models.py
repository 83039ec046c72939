"""Strict validation against Hera's Argo Workflows models (pydantic).

Hera's models ignore unknown keys, so a misspelt field would pass model_validate silently. Here
the object is validated, dumped back by alias with only the fields that were set, and compared
with the input: a key the model dropped is a field Argo Workflows does not have.
"""


def dropped_keys(given, back, path=""):
    out = []
    if isinstance(given, dict):
        if not isinstance(back, dict):
            return [f"{path or '.'}: not an object after validation"]
        for k, v in given.items():
            if k not in back:
                out.append(f"{path}.{k}: unknown field")
            else:
                out += dropped_keys(v, back[k], f"{path}.{k}")
    elif isinstance(given, list):
        if not isinstance(back, list) or len(back) != len(given):
            return [f"{path}: list changed by validation"]
        for i, (x, y) in enumerate(zip(given, back)):
            out += dropped_keys(x, y, f"{path}[{i}]")
    return out


def validate_strict(model, obj):
    """Returns the validated model; raises ValueError naming every unknown field."""
    m = model.model_validate(obj)
    back = m.model_dump(by_alias=True, exclude_unset=True, mode="json")
    unknown = dropped_keys(obj, back)
    if unknown:
        raise ValueError("\n".join(unknown))
    return m
