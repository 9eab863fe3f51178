"""The store's claims on PostgreSQL, driven through store.h by the C unit
test (tests/unit_store.c, --pg) against a real database: every write that
makes a delivery claimable is claimed from at once, not only when the
node's once-a-second walk of the database finds it."""
import os
import re
import subprocess

BACKENDS = ("postgres",)


def test_every_write_is_claimable_at_once(ctx):
    url = ctx.new_database()
    p = subprocess.run([os.path.join(ctx.build_dir, "tests", "unit_store"), "--pg", url],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and re.search(r"^\d+ passed, 0 failed$", p.stdout, re.M), \
        p.stdout[-3000:] + p.stderr[-3000:]
