"""`python -m orderservice --config oms.yaml`: check the guard, then serve with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from orderservice import config as oms_config
from orderservice.guard import refusal

EXIT_REFUSED = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orderservice")
    parser.add_argument("--config", type=Path, required=True, help="path of oms.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("oms")
    cfg, switch, breakers = oms_config.load(args.config)
    log.info("starting: environment=%s simulation=%s simulation_guard=%s kill-switch default=%s "
             "fail_closed=%s breaker=%s readiness_checks_dependencies=%s",
             cfg.environment, cfg.simulation, cfg.simulation_guard, switch.default.value,
             switch.fail_closed, breakers.postgres.enabled, cfg.readiness_checks_dependencies)
    if (why := refusal(cfg)) is not None:
        log.critical(why)
        return EXIT_REFUSED
    if cfg.environment == "production" and cfg.simulation:
        log.critical("SIMULATION MODE IN PRODUCTION: the simulation guard is switched off")

    import uvicorn

    from orderservice.app import build, create_app

    services = build(cfg, switch, breakers)
    services.db.ensure_schema()  # best effort: retried by the first order otherwise
    uvicorn.run(create_app(services), host=cfg.host, port=cfg.port, access_log=False,
                log_level="info", timeout_graceful_shutdown=2)
    services.db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
