"""Secrets at rest: endpoint signing secrets are sealed (AES-256-GCM) in the
database, API keys are kept only as hashes, and no secret or key ever appears
in the database (the SQLite files, or a pg_dump of the PostgreSQL database)
or the logs, while deliveries still sign correctly."""
import base64
import os
import stat

from harness import verify_agentvista_signature, verify_standard_signature, wait_until

BASE = "/org/default/webhooks"


def test_no_secret_in_database_or_logs(ctx):
    r = ctx.receiver()
    h = ctx.hookd(extra_args=["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"]])
    key_file = h.key_file  # <db>.key for SQLite; --master-key-file for PostgreSQL
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    secrets = [h.admin_key]
    st, ep, _ = h.request("POST", BASE + "/endpoints", {"url": r.url("/status/200"), "event_types": ["*"]})
    secrets.append(ep["secret"])
    st, rot, _ = h.request("POST", BASE + "/endpoints/" + ep["id"] + "/rotate-secret")
    secrets.append(rot["secret"])
    st, wh, _ = h.request("PUT", "/v1/webhooks", {"url": r.url("/status/200")})
    secrets.append(wh["new_signing_secret"])
    st, wr, _ = h.request("POST", "/v1/webhooks/rotate-signing-secret")
    secrets.append(wr["new_signing_secret"])
    rc, out, _ = h.cli("key", "create", "--org", "default", "--role", "member")
    secrets.append(out.strip())
    st, _, _ = h.request("POST", "/v1/events", {"event_type": "a", "payload": {"x": 1}})
    reqs = r.wait_for(2, "/status/200")
    # Sealed at rest, yet every delivery signs with the current secrets.
    by_av = [q for q in reqs if "x-agentvista-signature" in q["headers"]]
    plain = [q for q in reqs if "x-agentvista-signature" not in q["headers"]]
    assert verify_agentvista_signature(rot["secret"], by_av[0]["headers"], by_av[0]["body"])
    assert verify_standard_signature(rot["secret"], by_av[0]["headers"], by_av[0]["body"])
    assert verify_standard_signature(wr["new_signing_secret"], plain[0]["headers"], plain[0]["body"])
    h.stop()
    dump = ctx.db_dump(h) + open(h.stderr_path, "rb").read() + \
        open(h.stdout_path, "rb").read().replace(("default org admin key: " + h.admin_key).encode(), b"")
    for s in secrets:
        assert s and s.encode() not in dump, "a secret is readable at rest or in the logs"
        if s.startswith("whsec_"):
            assert s[6:].encode() not in dump
        if ctx.backend == "postgres":  # pg_dump shows a bytea column as hex
            assert s.encode().hex().encode() not in dump.lower(), "a secret is stored as plain bytes"
            if s.startswith("whsec_"):
                assert base64.b64decode(s[6:]).hex().encode() not in dump.lower()


def test_wrong_master_key_signs_nothing(ctx):
    r = ctx.receiver()
    h = ctx.hookd(extra_args=["--allow-targets", "127.0.0.0/8", "--ca-file", ctx.certs["ca"],
                              "--retry-schedule", "1h"])
    st, ep, _ = h.request("POST", BASE + "/endpoints", {"url": r.url("/status/200"), "event_types": ["*"]})
    h.stop()
    other = os.path.join(ctx.workdir, "other.key")
    h.extra += ["--master-key-file", other]
    h.start()
    st, _, _ = h.request("POST", "/v1/events", {"event_type": "a", "payload": {}})

    def attempted():
        st, ds, _ = h.request("GET", BASE + "/endpoints/" + ep["id"] + "/deliveries")
        return ds["deliveries"][0]["attempt_count"] == 1
    wait_until(attempted, 10, "the attempt")
    assert r.requests() == [], "a delivery was signed with a secret that did not open"
    assert "does not open" in h.log_text()
    # A group-readable key file is refused at start.
    h.stop()
    os.chmod(other, 0o640)
    try:
        h.start()
        raise AssertionError("hookd started with a group-readable master key file")
    except AssertionError as e:
        assert "chmod 600" in str(e) or "exited" in str(e), e
