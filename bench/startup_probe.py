#!/usr/bin/env python3
"""Startup to healthy: runs a server command, polls GET /-/health every millisecond and
prints the milliseconds from spawning the process to the first 200, then stops it.

    python3 bench/startup_probe.py PORT -- wvs-auth --data-dir D --keys-dir K serve --listen 127.0.0.1:PORT

The clock starts right before the fork, so it includes exec, opening and migrating the
database, loading the keys, spawning the workers and the first answer. Exit status 1 if the
server exits or is not healthy within --timeout seconds.
"""

import http.client
import subprocess
import sys
import time


def main():
    args = sys.argv[1:]
    timeout = 30.0
    if args and args[0] == "--timeout":
        timeout = float(args[1])
        args = args[2:]
    port = int(args[0])
    if args[1] != "--":
        sys.exit("usage: startup_probe.py [--timeout S] PORT -- COMMAND...")
    cmd = args[2:]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                sys.exit(f"startup_probe.py: server exited: {proc.stderr.read().decode()[-500:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/-/health")
                if c.getresponse().status == 200:
                    print(f"{(time.monotonic() - started) * 1000:.1f}")
                    return
            except OSError:
                pass
            time.sleep(0.001)
        sys.exit(f"startup_probe.py: not healthy after {timeout}s")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
