"""A postgres check among dummy checks: the seed-format body, its booleans, 200/503.

The http plugin's checks join this configuration in their own suite.
"""

import json
import secrets
import unittest

from healthd_fixture import main, running
from pg_cluster import PgCluster, free_port


class Combined(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster().__enter__()
        cls.password = "hd-pw-" + secrets.token_hex(8)
        cls.pg.create_user("app", cls.password)

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def config(self):
        return {"checks": [
            {"name": "db", "plugin": "postgres",
             "conninfo": self.pg.conninfo("app", self.password), "timeout_ms": 2000},
            {"name": "ok", "plugin": "dummy"},
            {"name": "slow", "plugin": "dummy", "result": "warning", "delay_ms": 100},
            {"name": "bad", "plugin": "dummy", "result": "critical", "defaults": False},
            {"name": "down", "plugin": "postgres", "defaults": False,
             "conninfo": f"host=127.0.0.1 port={free_port()} user=app password={self.password}"},
        ]}

    def expect(self, h, query, status, checks):
        available = ["true", "false", "db", "ok", "slow", "bad", "down"]
        health = "running" if all(checks.values()) else "degraded"
        body = json.dumps({"available_checks": available, "checks": checks, "health": health},
                          sort_keys=True, separators=(",", ":")) + "\n"
        got_status, headers, got_body = h.get("/health/" + query)
        self.assertEqual((got_status, got_body.decode()), (status, body), query)
        self.assertEqual(headers["content-type"], "application/json")

    def test_bodies_and_status_codes(self):
        with running(self, self.config()) as h:
            self.expect(h, "", 200, {"db": True, "ok": True, "slow": True})
            self.expect(h, "?checks=db,ok", 200, {"db": True, "ok": True})
            self.expect(h, "?checks=db", 200, {"db": True})
            self.expect(h, "?checks=db,bad", 503, {"bad": False, "db": True})
            self.expect(h, "?checks=down,ok", 503, {"down": False, "ok": True})
            self.expect(h, "?checks=_defaults,down", 503,
                        {"db": True, "down": False, "ok": True, "slow": True})
            self.pg.stop()
            try:
                self.expect(h, "", 503, {"db": False, "ok": True, "slow": True})
                self.expect(h, "?checks=ok", 200, {"ok": True})
            finally:
                self.pg.start()
            self.expect(h, "?checks=db,ok", 200, {"db": True, "ok": True})
        self.assertNotIn(self.password, h.log)


if __name__ == "__main__":
    main()
