#!/usr/bin/env python3
"""Oracle for barman-core's configuration model: Barman's own barman.config.Config.

Reads a JSON list of main configuration file paths on stdin (the included files and
barman_home already exist on disk), loads each one as `barman` does at start-up
(Config(file), configuration_files_directory, .barman.auto.conf, validate_global_config),
builds every server and model, runs the configuration checks server.py makes on a
server's options (bandwidth limits, minimum_redundancy, retention policies), and prints
for each case either {"error": ...} or the resolved values in a normalised JSON form,
with every warning Barman emitted (output.warning/error and logging warnings).

With --spec, prints Barman's option table instead (KEYS, DEFAULTS, BARMAN_KEYS, model
KEYS)."""
import datetime
import json
import logging
import sys
import types

import barman.output as output  # noqa: F401  (must be imported before barman.config)
import barman.config as bc
import barman.server as bs
from barman.retention_policies import RetentionPolicy

messages = []


def capture(kind):
    def f(msg, *args, **kwargs):
        try:
            text = msg % args if args else str(msg)
        except Exception:
            text = str(msg)
        messages.append([kind, text])

    return f


output.warning = capture("warning")
output.error = capture("error")


class Handler(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            messages.append(["log", record.getMessage()])


logging.getLogger().addHandler(Handler())
logging.getLogger().setLevel(logging.WARNING)


def norm(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, datetime.timedelta):
        return {"seconds": int(value.total_seconds())}
    if isinstance(value, bc.CsvOption):
        return {"set": sorted(value)}
    if isinstance(value, RetentionPolicy):
        return {"policy": str(value)}
    if isinstance(value, list):
        return [norm(v) for v in value]
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    return {"repr": repr(value)}


def answer(path):
    del messages[:]
    try:
        cfg = bc.Config(path)
        cfg.load_configuration_files_directory()
        import os

        autoconf = "%s/.barman.auto.conf" % cfg.get("barman", "barman_home")
        if os.path.exists(autoconf):
            cfg.load_config_file(autoconf)
        cfg.validate_global_config()
        servers = {}
        for server in cfg.servers():
            ns = types.SimpleNamespace(config=server, backup_manager=None)
            bs.Server._init_bandwidth_limits(ns)
            bs.Server._init_minimum_redundancy(ns)
            bs.Server._init_retention_policies(ns)
            values = {k: norm(getattr(server, k)) for k in bc.ServerConfig.KEYS}
            servers[server.name] = {"values": values, "msg_list": list(server.msg_list)}
        models = {}
        for model in cfg.models():
            models[model.name] = {
                k: norm(getattr(model, k))
                for k in bc.ModelConfig.KEYS
                if getattr(model, k) is not None
            }
        out = {
            "global": {
                "barman_home": cfg.barman_home,
                "barman_user": cfg.user,
                "barman_lock_directory": cfg.barman_lock_directory,
                "lock_directory_cleanup": cfg.lock_directory_cleanup,
                "config_changes_queue": cfg.config_changes_queue,
                "log_file": cfg.log_file,
                "log_level": str(cfg.log_level) if cfg.log_level != logging.INFO else "INFO",
                "log_format": cfg.log_format,
            },
            "servers": servers,
            "models": models,
            "global_msg_list": list(cfg.servers_msg_list),
        }
    except SystemExit as e:
        out = {"error": "SystemExit", "message": str(e)}
    except Exception as e:
        out = {"error": type(e).__name__, "message": str(e)}
    out["messages"] = list(messages)
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--spec"]:
        json.dump(
            {
                "keys": bc.ServerConfig.KEYS,
                "defaults": bc.ServerConfig.DEFAULTS,
                "barman_keys": bc.ServerConfig.BARMAN_KEYS,
                "fixed": bc.ServerConfig.FIXED,
                "model_keys": sorted(bc.ModelConfig.KEYS),
            },
            sys.stdout,
        )
    else:
        json.dump([answer(p) for p in json.load(sys.stdin)], sys.stdout)
