"""Every hostile input of issue 13 through the real command, one fresh process each: exit code, wall time,
peak memory (RSS of the child), stderr lines, and whether a secret or a traceback got out.

    python bench/hostile.py [--ckpt DIR]    # DIR: a toy checkpoint (default: the cached healthy toy)

Local fake servers listen on 127.0.0.1 only. Nothing here asserts: it prints a table (the tests assert).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "suites" / "shapes.yaml"
KEY = "sk-bench-HOSTILE-0123456789"


def bomb_png(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))


def server(post):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            self._json(200, {"data": [{"id": "m"}]})

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                post(self)
            except OSError:
                pass

        def _json(self, status, payload, headers=()):
            data = json.dumps(payload).encode()
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    s = ThreadingHTTPServer(("127.0.0.1", 0), H)
    s.daemon_threads = True
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s, f"http://127.0.0.1:{s.server_address[1]}"


def answer(text):
    return {"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}


def cases(tmp: Path, ckpt: Path):
    suites = tmp / "suites"
    shutil.copytree(SHAPES.parent, suites)
    base = (suites / "shapes.yaml").read_text()

    def suite(name, text):
        (suites / name).write_text(text)
        return str(suites / name)

    def ck(name, edit):
        dest = tmp / name / ckpt.name
        shutil.copytree(ckpt, dest)
        edit(dest)
        return str(dest)

    bomb = ["name: bomb", "x0: &a0 [v, v, v, v, v, v, v, v, v]"] + [
        f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    bomb += ["prompts:", "  - id: p", "    category: *a11", "    image: images/shapes/describe-two.png", "    question: q"]
    (suites / "images" / "huge.png").write_bytes(bomb_png(20000, 20000))

    def cfg(d):
        c = json.loads((d / "config.json").read_text())
        c["text_config"]["num_hidden_layers"] = 1_000_000
        (d / "config.json").write_text(json.dumps(c))

    def pickle_bin(d):
        import pickle

        class Evil:
            def __reduce__(self):
                return (print, ("pwned",))
        (d / "model.safetensors").unlink()
        with open(d / "pytorch_model.bin", "wb") as f:
            pickle.dump({"w": Evil()}, f)

    yield "yaml alias bomb (validate)", ["validate", suite("bomb.yaml", "\n".join(bomb) + "\n")], None
    yield (
        "20000x20000 PNG in a suite (validate)",
        ["validate", suite("huge.yaml", base.replace("images/shapes/describe-two.png", "images/huge.png", 1))],
        None,
    )
    yield "20000x20000 PNG in a suite (run)", ["run", str(ckpt), "--suite", str(suites / "huge.yaml"), "--out", str(tmp / "o1")], None
    yield (
        "max_new_tokens: 2000000",
        [
            "run",
            str(ckpt),
            "--suite",
            suite("tok.yaml", base.replace("max_new_tokens: 32", "max_new_tokens: 2000000", 1)),
            "--out",
            str(tmp / "o2"),
        ],
        None,
    )
    yield (
        "max_new_tokens: 1000 (> context 256)",
        [
            "run",
            str(ckpt),
            "--suite",
            suite("tok2.yaml", base.replace("max_new_tokens: 32", "max_new_tokens: 1000", 1)),
            "--out",
            str(tmp / "o3"),
        ],
        None,
    )
    yield "num_hidden_layers: 1000000", ["run", ck("cfg", cfg), "--out", str(tmp / "o4")], None
    yield "chat template: nested range(100000)", ["run", ck("tpl", lambda d: (d / "chat_template.jinja").write_text(
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}")), "--out", str(tmp / "o5")], None
    yield "non-tensor pickle as pytorch_model.bin", ["run", ck("pkl", pickle_bin), "--out", str(tmp / "o6")], None
    (tmp / "afile").write_text("x")
    yield "--out is an existing file", ["run", str(ckpt), "--out", str(tmp / "afile")], None
    yield "--junit is a folder", ["run", str(ckpt), "--out", str(tmp / "o7"), "--junit", str(tmp)], None

    far, far_url = server(lambda h: h._json(200, answer("stolen")))
    yield "302 to another origin", None, (lambda h: h._json(302, {}, [("Location", far_url + "/v1/chat/completions")]), far)
    yield "401 echoing the key", None, (lambda h: h._json(401, {"error": {"message": f"Incorrect API key provided: Bearer {KEY}"}}), None)

    def drip(h):
        data = json.dumps(answer("late")).encode()
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        for i in range(len(data)):
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()
            time.sleep(1)
    yield "1 byte/s server, --timeout 3", None, (drip, None)

    def endless(h):
        h.send_response(200)
        h.end_headers()
        for _ in range(200):
            h.wfile.write(b" " * (1 << 20))
    yield "endless body (200 MB)", None, (endless, None)
    yield "10 MB answer", None, (lambda h: h._json(200, answer("word " * 2_000_000)), None)
    yield "content: 12345", None, (lambda h: h._json(200, {"choices": [{"message": {"content": 12345}, "finish_reason": "stop"}]}), None)
    yield (
        'finish_reason: ["stop"]',
        None,
        (lambda h: h._json(200, {"choices": [{"message": {"content": "x"}, "finish_reason": ["stop"]}]}), None),
    )


def run_case(argv, tmp: Path, env) -> tuple[int, float, float, str, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "vibes_eval", *argv, "--quiet"] if argv[0] == "run" else [sys.executable, "-m", "vibes_eval", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB; the max over children so far
    return p.returncode, wall, max(peak, before) / 1024, p.stdout, p.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--ckpt",
        type=Path,
        default=Path(os.environ.get("VIBES_EVAL_CACHE", Path.home() / ".cache" / "vibes-eval")) / "toy" / "v2-seed0" / "healthy",
    )
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VIBES_EVAL_API_KEY": KEY}
    print("| attack | exit | wall s | peak RSS MiB (max so far) | stderr lines | secret out | traceback | first line |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for name, argv, remote in cases(tmp, args.ckpt):
            far = None
            if remote is not None:
                post, far = remote
                srv, url = server(post)
                out = tmp / ("r-" + str(abs(hash(name))))
                argv = ["run", "--base-url", url.replace("://", "://u:pw-HOSTILE@"), "--model", "m", "--suite", str(SHAPES),
                        "--out", str(out), "--junit", str(out / "j.xml"), "--timeout", "3"]
            code, wall, peak, so, se = run_case(argv, tmp, env)
            texts = [so, se] + ([p.read_text(errors="replace") for p in (tmp / ("r-" + str(abs(hash(name))))).glob("*")] if remote else [])
            leak = any("HOSTILE" in x for x in texts)
            lines = [x for x in se.strip().splitlines() if x]
            first = (lines[0] if lines else "")[:110].replace("|", "/")
            print(
                f"| {name} | {code} | {wall:.1f} | {peak:.0f} | {len(lines)} | {'YES' if leak else 'no'} | "
                f"{'YES' if 'Traceback' in se else 'no'} | {first} |"
            )
            if remote is not None:
                srv.shutdown()
            if far is not None:
                far.shutdown()


if __name__ == "__main__":
    main()
