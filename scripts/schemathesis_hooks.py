"""Schemathesis hooks for creditops (loaded through SCHEMATHESIS_HOOKS).

The exposure import (POST /v1/exposures/import on the risk service) takes
rows as JSON lines or CSV; its document describes the rows as an array of
objects. These serializers put a generated array on the wire in each
format, so the rows reach the server's row validation. Anything else
(negative cases) is sent as its JSON text, which the server must refuse.
"""

import csv
import io
import json

import schemathesis

COLUMNS = ["source_id", "borrower_id", "amount", "as_of"]


def _cell(value):
    return value if isinstance(value, str) else json.dumps(value)


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, list):
        return "".join(json.dumps(row) + "\n" for row in value).encode()
    return json.dumps(value).encode()


@schemathesis.serializer("text/csv")
def csv_rows(ctx, value):
    if not (isinstance(value, list) and all(isinstance(row, dict) for row in value)):
        return json.dumps(value).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in value:
        writer.writerow([_cell(row.get(column, "")) for column in COLUMNS])
    return out.getvalue().encode()
