"""CSV rows of a computation's members: the ExportAudience stream, and the files of CSV
destinations (engine.destinations.csv).

Both read one snapshot and walk the members (or, for a computed trait, the profiles with a
value) in the order of their internal profile numbers (not of the public `prf_…` ids), a chunk
at a time, so memory stays flat whatever the audience size.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

import apsw

from audiences_server.engine.sync.payloads import select_ids
from audiences_server.store import evaluation
from audiences_server.store import sync as store
from audiences_server.store.evaluation import ComputationRow

CHUNK_ROWS = 1000
DEFAULT_ID_TYPES = {"users": ["user_id", "email"], "accounts": ["group_id"]}


def _cell(value: Any) -> str:
    """Strings as they are, other values as JSON, absent values empty."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def trait_values(conn: apsw.Connection, comp: ComputationRow, keys: Sequence[str], pids: list[int]
            ) -> dict[int, dict[str, Any]]:
    """Custom traits overlaid with the values of the collection's computations of those keys."""
    found = evaluation.custom_traits(conn, pids, set(keys))
    comps = [c for c in evaluation.computations(conn, comp.space_id)
             if c.collection == comp.collection and c.key in keys]
    values = evaluation.values_of(conn, [c.computation_id for c in comps], pids)
    keyed = {c.computation_id: c.key for c in comps}
    for (cid, pid), text in values.items():
        found.setdefault(pid, {})[keyed[cid]] = json.loads(text)
    return found


def columns(comp: ComputationRow, id_types: Sequence[str], traits: Sequence[str]) -> tuple[list[str], list[str]]:
    """The identifier and trait columns, each name once: a name chosen both as an identifier type
    and as a trait (`email`) is the identifier's column, and a computed trait's own key is added."""
    chosen_ids = list(dict.fromkeys(id_types)) or DEFAULT_ID_TYPES[comp.collection]
    chosen_traits = list(dict.fromkeys(traits))
    if comp.kind == "computed_trait":
        chosen_traits.append(comp.key)
    return chosen_ids, [k for k in dict.fromkeys(chosen_traits) if k not in chosen_ids]


def csv_chunks(conn: apsw.Connection, comp: ComputationRow, id_types: Sequence[str], traits: Sequence[str],
               selection: str) -> Iterator[tuple[bytes, int]]:
    """CSV rows of a computation's members, the header row first: (bytes, member rows) per chunk."""
    id_types, traits = columns(comp, id_types, traits)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["profile_id", *id_types, *traits])
    after, first = 0, True
    while True:
        rows = store.current_values(conn, comp.computation_id, comp.kind == "audience", after, CHUNK_ROWS)
        if not rows and not first:
            return
        pids = [pid for pid, _, _ in rows]
        refs = evaluation.profile_refs(conn, pids)
        values = trait_values(conn, comp, traits, pids) if traits else {}
        for pid in pids:
            public, _, own = refs.get(pid, ("", "", []))
            chosen = select_ids(own, selection, id_types, exiting=False)
            cells = [",".join(v for t, v in chosen if t == id_type) for id_type in id_types]
            writer.writerow([public, *cells, *(_cell(values.get(pid, {}).get(k)) for k in traits)])
        yield out.getvalue().encode(), len(pids)
        out.seek(0)
        out.truncate()
        first = False
        if len(rows) < CHUNK_ROWS:
            return
        after = rows[-1][0]

