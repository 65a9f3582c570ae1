#!/usr/bin/env python3
"""Differential-test oracle: Barman's own Python code answering the same questions as
barman-catalog. Reads a JSON list of cases on stdin, writes a JSON list of answers.

Run with a Python that can import barman (pip install barman) and TZ=UTC.
"""
import io
import json
import sys
from datetime import datetime, timezone

import barman.output  # noqa: F401  (import order: output before infofile)
from barman import retention_policies
from barman.backup import BackupManager
from barman.infofile import BackupInfo
from barman.retention_policies import RetentionPolicyFactory


class Backup:
    """What retention and WAL cleanup read from a backup."""

    def __init__(self, d, all_backups):
        self.backup_id = d["id"]
        self.status = d["status"]
        self.end_time = (
            datetime.fromtimestamp(d["end"], timezone.utc) if d.get("end") is not None else None
        )
        self.parent_backup_id = d.get("parent")
        self.children_backup_ids = d.get("children") or None
        self.timeline = d.get("timeline")
        self.begin_wal = d.get("begin_wal")
        self.end_wal = d.get("end_wal")
        self._all = all_backups

    @property
    def is_incremental(self):
        return self.parent_backup_id is not None

    @property
    def has_children(self):
        return self.children_backup_ids is not None

    def walk_backups_tree(self, return_self=True):
        for child in self.children_backup_ids or []:
            if child in self._all:
                yield from self._all[child].walk_backups_tree()
        if return_self:
            yield self


class Catalog:
    def __init__(self, backups, keeps):
        self.backups = backups
        self.keeps = keeps

    def get_backup_list(self):
        return self.backups

    def get_keep_target(self, backup_id):
        return self.keeps.get(backup_id)


def build(case):
    backups = {}
    for d in case["backups"]:
        backups[d["id"]] = Backup(d, backups)
    return backups


def retention(case):
    fixed = datetime.fromtimestamp(case["now"], timezone.utc)

    class FixedNow(datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed.astimezone(tz) if tz else fixed

    retention_policies.datetime = FixedNow
    backups = build(case)
    source = {k: v for k, v in backups.items() if v.status != "EMPTY"}
    policy = RetentionPolicyFactory.create(
        "retention_policy",
        case["policy"],
        server_name="pg",
        catalog=Catalog(source, case["keeps"]),
        minimum_redundancy=case["min_red"],
    )
    return {"normalised": str(policy), "report": policy.report(source=source)}


def cleanup(case):
    backups = build(case)
    deleted = backups[case["deleted"]]
    copy_done = ("DONE", "WAITING_FOR_WALS")
    available = {k: v for k, v in backups.items() if v.status in copy_done + (deleted.status,)}
    should, ranges = BackupManager.should_remove_wals(
        deleted,
        available,
        keep_manager=Catalog(backups, case["keeps"]),
        skip_wal_cleanup_if_standalone=not case["from_retention"],
    )
    if not should:
        return {"removed": []}
    later = sorted(k for k, v in backups.items() if k > deleted.backup_id and v.status in copy_done)
    if later:
        remove_until = backups[later[0]]
    elif case["concurrent"]:
        remove_until = deleted
    else:
        remove_until = None
    archiving = {
        k: v
        for k, v in backups.items()
        if v.status in ("STARTED", "WAITING_FOR_WALS", "DONE", "SYNCING")
    }
    protect = BackupManager.get_timelines_to_protect(remove_until, deleted, archiving)
    removed = []
    for name in case["names"]:
        # The per-file rule of BackupManager.remove_wal_before_backup.
        keep = name.endswith(".history")
        if protect:
            keep |= int(name[0:8], 16) in protect
        wal = name[:24] if name.endswith(".backup") else name
        for b, e in ranges:
            keep |= wal >= b and wal <= e
        if remove_until and remove_until.begin_wal is not None:
            keep |= name >= remove_until.begin_wal
        if not keep:
            removed.append(name)
    return {"removed": removed}


def backup_info(case):
    info = BackupInfo(backup_id=case["id"])
    info.load(file_object=io.BytesIO(case["text"].encode("utf-8")))
    out = io.BytesIO()
    info.save(file_object=out)
    return {"text": out.getvalue().decode("utf-8")}


def main():
    answers = []
    for case in json.load(sys.stdin):
        try:
            answers.append(globals()[case["kind"]](case))
        except Exception as e:  # the answer is the error
            answers.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
