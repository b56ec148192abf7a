"""A separate OS process appending audit events, for the concurrency test.

Usage: python audit_writer.py DB_URL WORKER TRANSACTIONS READY_DIR WORKERS
Each transaction records two events (every fifth is rolled back instead of committed).
Prints one JSON line: {"committed": <events committed>}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    db_url, worker, transactions, ready_dir, workers = sys.argv[1:6]
    from migrator import create_app
    from migrator.audit.service import Actor, acting_as, record
    from migrator.db import get_session

    app = create_app({"DATABASE_URL": db_url, "TESTING": True,
                      "SECRET_KEY": "writer-secret-key-0123456789"})
    committed = 0
    with app.app_context():
        get_session().connection()  # connect before the common start
        get_session().rollback()
    # A barrier: start together once every writer is connected.
    ready = Path(ready_dir)
    (ready / worker).touch()
    deadline = time.time() + 60
    while len(list(ready.iterdir())) < int(workers) and time.time() < deadline:
        time.sleep(0.01)
    for i in range(int(transactions)):
        with app.app_context(), acting_as(Actor("job", f"writer-{worker}", "writer")):
            session = get_session()
            record("concurrency.first", object_type="writer", object_id=worker,
                   summary={"i": i})
            record("concurrency.second", object_type="writer", object_id=worker,
                   summary={"i": i})
            if i % 5 == 4:
                session.rollback()
            else:
                session.commit()
                committed += 2
        time.sleep(0.002)  # let the other writers in
    app.extensions["migrator.engine"].dispose()
    print(json.dumps({"committed": committed}))


if __name__ == "__main__":
    main()
