"""Keeping a dynamic partitions definition in step with the rows it follows (games, selectors, model classes):
one computation of what to add and remove, and the requests a sensor returns for it."""

import dagster as dg


def partition_changes(wanted: list[str], known: list[str]) -> tuple[list[str], list[str]]:
    """(to add, to remove): wanted keys without a partition, partitions no longer wanted (order kept)."""
    return [c for c in wanted if c not in known], [c for c in known if c not in wanted]


def sync_requests(partitions: dg.DynamicPartitionsDefinition, wanted: list[str], known: list[str],
                  removable: bool = True) -> tuple[list[str], list[str], list]:
    """(added, removed, dynamic partition requests) bringing ``partitions`` from ``known`` to ``wanted``; with
    ``removable`` false nothing is removed (the caller cannot yet tell a gone key from an unread one)."""
    add, remove = partition_changes(wanted, known)
    remove = remove if removable else []
    requests = ([partitions.build_add_request(add)] if add else []) + \
        ([partitions.build_delete_request(remove)] if remove else [])
    return add, remove, requests
