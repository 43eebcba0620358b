"""Issue 13, the `run` command end to end: bad report paths found first, same-named checkpoints kept
apart, a token budget beyond the context refused, Ctrl-C on a remote run honoured at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from bounded import finish
from helpers import SHAPES
from httpstub import NO_PROMPT_LOGPROBS, is_capability_probe

from vibes_eval.cli.main import main


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("case", ["out-is-a-file", "junit-is-a-folder", "out-under-a-file"])
def test_a_bad_out_or_junit_is_exit_2_before_any_checkpoint_work(tmp_path, capsys, case):
    (tmp_path / "file").write_text("keep me")
    out, junit = tmp_path / "out", None
    if case == "out-is-a-file":
        out = tmp_path / "file"
    elif case == "junit-is-a-folder":
        junit = tmp_path
    else:
        out = tmp_path / "file" / "sub"
    argv = ["run", str(tmp_path / "no-such-checkpoint"), "--suite", str(SHAPES), "--out", str(out), "--quiet"]
    code = main(argv + (["--junit", str(junit)] if junit else []))
    err = one_line(capsys)  # the checkpoint does not exist: exit 2 here proves nothing was tried before the check
    assert code == 2 and ("--junit" if junit else "--out") in err
    assert (tmp_path / "file").read_text() == "keep me"


def test_a_token_budget_beyond_the_context_is_exit_2_naming_the_field(zoo_dir, tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    shutil.copytree(SHAPES.parent / "images", tmp_path / "images")
    text = SHAPES.read_text()
    assert "defaults:\n  max_new_tokens: 32\n" in text
    suite.write_text(text.replace("defaults:\n  max_new_tokens: 32\n", "defaults:\n  max_new_tokens: 5000\n"))
    code = main(["run", str(zoo_dir / "healthy"), "--suite", str(suite), "--out", str(tmp_path / "out"), "--quiet"])
    err = one_line(capsys)
    assert (
        code == 2
        and "defaults.max_new_tokens: 5000 is more than the checkpoint's context (text_config.max_position_embeddings) (256 tokens)" in err
    )


def test_same_named_checkpoints_get_two_folders_and_two_columns(zoo_dir, tmp_path, capsys):
    for side in ("a", "b"):
        shutil.copytree(zoo_dir / ("healthy" if side == "a" else "gibberish"), tmp_path / side / "ckpt")
    out = tmp_path / "out"
    main(["run", str(tmp_path / "a" / "ckpt"), str(tmp_path / "b" / "ckpt"), "--out", str(out), "--quiet", "--no-grounding"])
    first, second = (json.loads((out / name / "scorecard.json").read_text()) for name in ("ckpt", "ckpt-2"))
    assert first["checkpoint"].endswith("a/ckpt") and second["checkpoint"].endswith("b/ckpt")
    assert first["run_id"] == second["run_id"]
    html = (out / "compare.html").read_text()
    assert html.count(f'<span class="mono run-id">{first["run_id"]}</span>') == 2
    assert "ckpt (ckpt)" in html and "ckpt (ckpt-2)" in html


def test_ctrl_c_ends_a_remote_run_with_130_and_leaves_no_half_file(tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    posts, release = [], threading.Event()

    class Hang(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            data = json.dumps({"data": [{"id": "m"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # noqa: N802
            if is_capability_probe(self.rfile.read(int(self.headers["Content-Length"]))):  # answered at once: no extension
                data = json.dumps(NO_PROMPT_LOGPROBS).encode()
                self.send_response(400)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            posts.append(1)
            release.wait(30)  # bounded: hangs far longer than the test waits

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "out"
    out.mkdir()
    (out / "scorecard.json").write_text('{"an": "earlier report"}')
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vibes_eval", "run", "--base-url", f"http://127.0.0.1:{server.server_address[1]}",
             "--model", "m", "--suite", str(SHAPES), "--out", str(out), "--timeout", "60", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        for _ in range(600):  # until the run has requests in flight (at most 60 s on a busy machine)
            if posts or proc.poll() is not None:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = finish(proc, 20, "vibes-eval run --base-url after Ctrl-C")  # waiting for --timeout 60 x 3 tries: minutes
        took = time.monotonic() - sent
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert posts and proc.returncode == 130, err
    assert took < 5, took  # about a second, with room for a busy machine
    assert err.strip().splitlines()[-1] == "vibes-eval: interrupted" and "Traceback" not in err
    assert (out / "scorecard.json").read_text() == '{"an": "earlier report"}'
    assert [p.name for p in out.iterdir()] == ["scorecard.json"]
