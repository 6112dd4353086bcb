#!/usr/bin/env python3
"""Checks recorded HTTP responses against the OpenAPI 3.1 document.

argv[1]: the document. stdin: one JSON object per line, {"method", "path", "status", "content_type", "body"}.
Each response must belong to a documented route and method, have a documented status, the documented content
type, and (for JSON) a body valid against the documented schema (JSON Schema 2020-12: types, required fields,
enums, no undocumented fields, date-time formats through rfc3339-validator). Prints every problem; exits 1 if there is any.
"""
import json
import re
import sys

import rfc3339_validator  # noqa: F401  (without it jsonschema skips date-time checks silently)
from jsonschema import Draft202012Validator

document = json.load(open(sys.argv[1]))
routes = []
for template, item in document["paths"].items():
    pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
    routes.append((re.compile(pattern), template, item))

problems = []
checked = 0
assert document["openapi"].startswith("3.1"), "the document must be OpenAPI 3.1 (its schemas are JSON Schema 2020-12)"
for name, schema in document["components"]["schemas"].items():
    Draft202012Validator.check_schema(schema)
for number, line in enumerate(sys.stdin, 1):
    if not line.strip():
        continue
    record = json.loads(line)
    where = f'{record["method"]} {record["path"]} -> {record["status"]}'
    path = record["path"].split("?")[0]
    matches = [(template, item) for pattern, template, item in routes if pattern.match(path)]
    # A literal route wins over a templated one that also matches.
    matches.sort(key=lambda m: m[0].count("{"))
    if not matches:
        # An unknown route: 404 with the documented error body.
        if record["status"] != 404:
            problems.append(f"{where}: no documented route")
            continue
        matches = [("(unknown)", {record["method"].lower(): {"responses": {"404": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}})]
    template, item = matches[0]
    operation = item.get(record["method"].lower())
    if operation is None and record["status"] == 405:
        # A documented path asked with another method: 405 with the documented error body.
        operation = {"responses": {"405": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}
    if operation is None:
        problems.append(f"{where}: {record['method']} is not documented for {template}")
        continue
    response = operation["responses"].get(str(record["status"]))
    if response is None:
        problems.append(f"{where}: status {record['status']} is not documented for {record['method']} {template}")
        continue
    content = response.get("content")
    if not content:
        checked += 1
        continue
    media = record.get("content_type", "").split(";")[0].strip()
    declared = {key.split(";")[0].strip(): value for key, value in content.items()}
    if media not in declared:
        problems.append(f"{where}: content type {record.get('content_type')!r}, documented {sorted(content)}")
        continue
    if media == "application/json":
        try:
            body = json.loads(record["body"])
        except ValueError as error:
            problems.append(f"{where}: body is not JSON ({error}): {record['body'][:200]!r}")
            continue
        schema = dict(declared[media]["schema"])
        schema["components"] = document["components"]
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        for error in errors[:5]:
            problems.append(f"{where}: at {'/'.join(map(str, error.path)) or '(root)'}: {error.message[:300]}")
    checked += 1

for problem in problems:
    print(problem)
print(f"{checked} responses valid, {len(problems)} problems")
sys.exit(1 if problems or checked == 0 else 0)
