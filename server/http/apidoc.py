"""Render the OpenAPI document into docs/api.md: `python -m server.http.apidoc > docs/api.md`."""

from __future__ import annotations

import json
import sys
from typing import Any

from server.http.openapi import OPERATIONS, SECURITY_SCHEMES, document

INTRO = """# HTTP API

Generated from the OpenAPI document (`GET /api/openapi.json`, built from the msgspec types the
handlers decode) by `python -m server.http.apidoc`; do not edit by hand. Signalling is the
WebSocket of [protocol.md](protocol.md).

Every error is JSON `{"error": code, "message": text}`. Unknown or repeated query parameters,
numbers that are not plain ASCII digits, dates outside 2000..2100, bodies over 64 KiB or
nested too deeply are 400. Ids chosen by operators (site, terminal, department, username)
match `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`. Authenticate with `Authorization: Bearer <token>`
from `POST /api/login`, or the session cookie it sets (unsafe methods then need
`X-CSRF-Token` equal to the `vwin_csrf` cookie).
"""


def _schema(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if "anyOf" in schema:
        return " or ".join(_schema(s) for s in schema["anyOf"])
    kind = str(schema.get("type", "any"))
    if "enum" in schema:
        kind += " (" + ", ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"]) + ")"
    bounds = [f"{k} {schema[k]}" for k in ("minLength", "maxLength", "minimum", "maximum",
                                            "pattern") if k in schema]
    return kind + (" [" + "; ".join(bounds) + "]" if bounds else "")


def render(doc: dict[str, Any]) -> str:
    out = [INTRO, "## Roles\n"]
    out += [f"- `{name}`: {scheme['description']}" for name, scheme in SECURITY_SCHEMES.items()]
    out.append("\n## Routes\n")
    for op in OPERATIONS:
        spec = doc["paths"][op.path][op.method.lower()]
        who = ", ".join(spec.get("x-roles", [])) or "anyone"
        out.append(f"### `{op.method} {op.path}`\n\n{op.summary}. Who: {who}. "
                   f"Answers {op.status} ({op.media}).")
        for param in spec["parameters"]:
            need = "required" if param["required"] else "optional"
            out.append(f"- {param['in']} `{param['name']}` ({need}): {_schema(param['schema'])}")
        if "requestBody" in spec:
            body = spec["requestBody"]["content"]["application/json"]["schema"]
            out.append(f"- body: {_schema(body)}")
        out.append("")
    out.append("## Schemas\n")
    for name, schema in sorted(doc["components"]["schemas"].items()):
        if "properties" not in schema:
            continue
        required = set(schema.get("required", []))
        out.append(f"### {name}\n")
        for field, prop in schema["properties"].items():
            mark = "" if field in required else " (optional)"
            out.append(f"- `{field}`{mark}: {_schema(prop)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    from server.app import create_app
    from server.config import load_settings

    sys.stdout.write(render(document(create_app(load_settings(env={})))))


if __name__ == "__main__":
    main()
