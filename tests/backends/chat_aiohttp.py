#!/usr/bin/env python3
"""An independent chat backend for pathwatch's golden_path tests (Python, aiohttp).

Written from the protocol facts in the book (docs/src/probes/golden_path.md), not from
src/sim: a second implementation, so that the probe is tried against choices pathwatch's authors did not make.

What it speaks:
  POST /auth/login          {"email","password"} -> {"access_token","refresh_token",
                            "token_type":"Bearer","expires_in":900,"user":{"id","email"}}; 401
  GET  /ws, /api/v1/websocket
                            the token as subprotocol `jwt.<base64url>` (echoed), as
                            `Authorization: Bearer`, or as `?token=`; then
                            {"type":"connection_established"}, heartbeats, and for each
                            `user_message` / `start_agent` the 5 agent events, with unrelated
                            types (typing, status_update) in between
  GET  /admin/log           the requests this server saw (path, had_password, header names)
  PUT  /admin/variant       JSON object: switches variants at run time (same names as flags)

Variants (flags, or keys of PUT /admin/variant):
  --threads assign|echo     server-assigned thread ids (default) or the client's
  --shape mixed|flat|nested flat events, `payload`-nested, or alternating (default)
  --event-key type|event    where every server message's name lives: `type` or `event`
  --ids both|thread|none    which ids events carry (`none`: no thread_id, no user_id)
  --auth any|subprotocol|bearer|query   which token presentations are accepted
  --ack                     send {"type":"session_ready","thread_id":...} after the welcome;
                            the next run uses that thread
  --start-types a,b         message types that start a run (default user_message,start_agent)
  --login-shape standard|nested   nested: {"data":{"jwt":...,"account":{"uid":...}}}
  --fault NAME              crosstalk_thread: another run's events of the same user
                            interleave with ours; crosstalk_user: events of another user
                            interleave; broadcast: every run's events go to every connection;
                            unexpected: events renamed (agent.started, ...); missing: no
                            tool_completed; none (default)
  --login-redirect URL      answer /auth/login with 307 to URL (absolute or a path)
  --login-endless           answer /auth/login with 200 and a JSON body that never ends
"""

import argparse
import asyncio
import base64
import hashlib
import json
import secrets
import sys
import time
from datetime import datetime, timezone

from aiohttp import web

EVENTS = ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed"]


class Backend:
    def __init__(self, opts):
        self.v = {
            "threads": opts.threads,
            "shape": opts.shape,
            "event_key": opts.event_key,
            "ids": opts.ids,
            "auth": opts.auth,
            "ack": opts.ack,
            "start_types": opts.start_types.split(","),
            "login_shape": opts.login_shape,
            "fault": opts.fault,
            "login_redirect": opts.login_redirect,
            "login_endless": opts.login_endless,
            "heartbeat_ms": opts.heartbeat_ms,
            "pause_ms": opts.pause_ms,
        }
        self.password = opts.password
        self.tokens = {}  # token -> (user_id, email)
        self.sockets = set()  # open connections, for the broadcast fault
        self.log = []

    # ---- auth ----

    @staticmethod
    def user_id(email):
        return "u-" + hashlib.sha256(email.encode()).hexdigest()[:10]

    async def login(self, request):
        body = None
        try:
            body = await request.json()
        except Exception:
            pass
        self.log.append({
            "path": request.path,
            "method": request.method,
            "had_password": isinstance(body, dict) and "password" in body,
            "headers": sorted(h.lower() for h in request.headers.keys()),
        })
        if self.v["login_redirect"]:
            raise web.HTTPTemporaryRedirect(self.v["login_redirect"])
        if self.v["login_endless"]:
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            await resp.write(b'{"access_token":"')
            chunk = b"A" * 65536
            while True:
                await resp.write(chunk)
        if not isinstance(body, dict) or "email" not in body or "password" not in body:
            return web.json_response({"detail": "email and password required"}, status=422)
        if body["password"] != self.password:
            return web.json_response({"detail": "Invalid credentials"}, status=401)
        email = str(body["email"])
        token = secrets.token_urlsafe(24)
        uid = self.user_id(email)
        self.tokens[token] = (uid, email)
        if self.v["login_shape"] == "nested":
            return web.json_response({"data": {"jwt": token, "account": {"uid": uid}}})
        return web.json_response({
            "access_token": token,
            "refresh_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 900,
            "user": {"id": uid, "email": email},
        })

    async def login_again(self, request):
        # The target of a same-origin redirect: a plain login.
        saved = self.v["login_redirect"]
        self.v["login_redirect"] = None
        try:
            return await self.login(request)
        finally:
            self.v["login_redirect"] = saved

    # ---- WebSocket ----

    def msg(self, name, **fields):
        """A server message named `name`, under this variant's name key."""
        return {self.v["event_key"]: name, **fields}

    def find_token(self, request):
        """(token, echoed subprotocol or None) from the presentations this variant accepts."""
        allowed = self.v["auth"]
        if allowed in ("any", "subprotocol"):
            offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
            for p in offered:
                if p.startswith("jwt."):
                    raw = p[4:]
                    try:
                        tok = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
                    except Exception:
                        continue
                    if tok in self.tokens:
                        return tok, p
        if allowed in ("any", "bearer"):
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and auth[7:] in self.tokens:
                return auth[7:], None
        if allowed in ("any", "query"):
            tok = request.query.get("token")
            if tok in self.tokens:
                return tok, None
        return None, None

    async def websocket(self, request):
        token, proto = self.find_token(request)
        if token is None:
            return web.json_response({"detail": "not authenticated"}, status=401)
        uid, _ = self.tokens[token]
        ws = web.WebSocketResponse(protocols=(proto,) if proto else ())
        await ws.prepare(request)
        conn = {"ws": ws, "user": uid, "next_thread": None}
        self.sockets.add(ws)
        await ws.send_json(self.msg(
            "connection_established",
            connection_id=secrets.token_hex(6),
            server_time=datetime.now(timezone.utc).isoformat(),
        ))
        if self.v["ack"]:
            conn["next_thread"] = "thread-" + secrets.token_hex(2)
            await ws.send_json(self.msg("session_ready", thread_id=conn["next_thread"]))
        beat = asyncio.create_task(self.heartbeats(ws))
        runs = set()
        try:
            async for msg in ws:
                if msg.type != web.WSMsgType.TEXT:
                    continue
                try:
                    m = json.loads(msg.data)
                except ValueError:
                    await ws.send_json(self.msg("error", message="invalid JSON"))
                    continue
                kind = m.get("type") if isinstance(m, dict) else None
                if kind == "ping":
                    await ws.send_json(self.msg("pong"))
                    continue
                if kind not in self.v["start_types"]:
                    await ws.send_json(self.msg("error", message=f"unknown message type {kind!r}"))
                    continue
                t = asyncio.create_task(self.run(conn, m))
                runs.add(t)
                t.add_done_callback(runs.discard)
        finally:
            beat.cancel()
            for t in runs:
                t.cancel()
            self.sockets.discard(ws)
        return ws

    async def heartbeats(self, ws):
        while not ws.closed:
            await asyncio.sleep(self.v["heartbeat_ms"] / 1000)
            try:
                await ws.send_json(self.msg("heartbeat", timestamp=time.time()))
            except Exception:
                return

    def event(self, name, i, thread, user, extra):
        """One agent event in this variant's shape; `i` alternates the mixed shape."""
        shape = self.v["shape"]
        nested = shape == "nested" or (shape == "mixed" and i % 2 == 1)
        fields = dict(extra)
        ids = self.v["ids"]
        if ids in ("both", "thread"):
            fields["thread_id"] = thread
        if ids == "both":
            fields["user_id"] = user
        # Timestamps: numbers on even events, ISO strings on odd ones.
        fields["timestamp"] = time.time() if i % 2 == 0 else datetime.now(timezone.utc).isoformat()
        key = self.v["event_key"]
        if nested:
            return {key: name, "payload": fields}
        return {key: name, **fields}

    async def run(self, conn, msg):
        payload = msg.get("payload") if isinstance(msg.get("payload"), dict) else {}
        text = payload.get("text") or payload.get("user_request") or msg.get("text") or ""
        sent_thread = payload.get("thread_id") or msg.get("thread_id")
        if conn["next_thread"]:
            thread, conn["next_thread"] = conn["next_thread"], None
        elif self.v["threads"] == "echo" and sent_thread:
            thread = str(sent_thread)
        else:
            thread = "thread-" + secrets.token_hex(2)
        user = conn["user"]
        fault = self.v["fault"]
        pause = self.v["pause_ms"] / 1000
        run_id = secrets.token_hex(4)
        extras = [
            {"run_id": run_id, "agent": "optimizer"},
            {"thought": "Looking at " + text[:40]},
            {"tool": "query_history", "args": {"limit": 5}},
            {"tool": "query_history", "result": {"rows": 3}},
            {"final_response": "Your last optimisation finished.", "run_id": run_id},
        ]
        ws = conn["ws"]
        for i, name in enumerate(EVENTS):
            await asyncio.sleep(pause)
            if i == 1:
                await ws.send_json(self.msg("typing", active=True))
            if i == 3:
                await ws.send_json(self.msg("status_update", status="processing", thread_id=thread))
            if fault == "missing" and name == "tool_completed":
                continue
            shown = name.replace("_", ".") if fault == "unexpected" else name
            ev = self.event(shown, i, thread, user, extras[i])
            targets = [ws]
            if fault == "broadcast":
                targets = list(self.sockets)
            for t in targets:
                try:
                    await t.send_json(ev)
                except Exception:
                    pass
            if fault == "crosstalk_thread" and i >= 1:
                await ws.send_json(self.event(name, i, "thread-3f2a", user, extras[i]))
            if fault == "crosstalk_user" and i >= 1:
                await ws.send_json(self.event(name, i, thread, "u-someone-else", extras[i]))

    # ---- admin ----

    async def get_log(self, request):
        return web.json_response(self.log)

    async def put_variant(self, request):
        changes = await request.json()
        unknown = [k for k in changes if k not in self.v]
        if unknown:
            return web.json_response({"detail": f"unknown variants {unknown}"}, status=400)
        self.v.update(changes)
        return web.json_response(self.v)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--password", default="independent-pw")
    p.add_argument("--threads", choices=["assign", "echo"], default="assign")
    p.add_argument("--shape", choices=["mixed", "flat", "nested"], default="mixed")
    p.add_argument("--event-key", choices=["type", "event"], default="type")
    p.add_argument("--ids", choices=["both", "thread", "none"], default="both")
    p.add_argument("--auth", choices=["any", "subprotocol", "bearer", "query"], default="any")
    p.add_argument("--ack", action="store_true")
    p.add_argument("--start-types", default="user_message,start_agent")
    p.add_argument("--login-shape", choices=["standard", "nested"], default="standard")
    p.add_argument("--fault", default="none",
                   choices=["none", "crosstalk_thread", "crosstalk_user", "broadcast", "unexpected", "missing"])
    p.add_argument("--login-redirect")
    p.add_argument("--login-endless", action="store_true")
    p.add_argument("--heartbeat-ms", type=int, default=40)
    p.add_argument("--pause-ms", type=int, default=15)
    opts = p.parse_args()

    backend = Backend(opts)
    app = web.Application()
    app.router.add_post("/auth/login", backend.login)
    app.router.add_post("/auth/login2", backend.login_again)
    app.router.add_get("/ws", backend.websocket)
    app.router.add_get("/api/v1/websocket", backend.websocket)
    app.router.add_get("/admin/log", backend.get_log)
    app.router.add_put("/admin/variant", backend.put_variant)

    async def serve():
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", opts.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        # The test harness reads this line for the port.
        print(f"listening 127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
