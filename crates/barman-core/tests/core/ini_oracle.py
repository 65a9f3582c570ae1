#!/usr/bin/env python3
"""Oracle for barman-core's INI reader: CPython's configparser, configured as Barman
configures it (ConfigParser(strict=False), basic interpolation). Reads a JSON list of
cases on stdin ({"files": [[name, text], ...], "vars": {k: v}}), writes the answers."""
import json
import sys
from configparser import ConfigParser, Error


def answer(case):
    parser = ConfigParser(strict=False)
    for name, text in case["files"]:
        tmp = ConfigParser(strict=False)
        try:
            tmp.read_string(text, source=name)
        except Error as e:
            return {"error": type(e).__name__}
        parser.read_string(text, source=name)
    out = {"sections": parser.sections(), "values": {}}
    for section in ["DEFAULT"] + parser.sections():
        values = {}
        names = parser.defaults().keys() if section == "DEFAULT" else parser.options(section)
        for option in names:
            try:
                if section == "DEFAULT":
                    values[option] = parser.get("DEFAULT", option, vars=case["vars"])
                else:
                    values[option] = parser.get(section, option, vars=case["vars"])
            except Error as e:
                values[option] = {"error": type(e).__name__}
        out["values"][section] = values
    return out


json.dump([answer(c) for c in json.load(sys.stdin)], sys.stdout)
