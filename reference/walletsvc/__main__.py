"""``python3 -m walletsvc``: read the settings, serve until SIGTERM (then finish in-flight requests)."""

from __future__ import annotations

import signal
import sys
import threading

from walletsvc import app, settings


def main() -> int:
    try:
        config = settings.from_environment()
    except settings.SettingsError as exc:
        print(f"wallet-service: {exc}", file=sys.stderr)
        return 2
    httpd, _ = app.serve(config)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown, daemon=True).start())
    print(f"wallet-service {config.role} on :{config.port}, metrics on :{config.metrics_port}", flush=True)
    httpd.serve_forever()
    httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
