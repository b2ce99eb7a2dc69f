"""Starts the pinned moto server (local/emulator-requirements.txt) with one change, to its speed
only: a DynamoDB transaction undoes just what it wrote when it is canceled.

moto 5.2.5 deep-copies every table a TransactWriteItems names before running it, to restore
them if it is canceled. A copy holds every item and every record of the table's stream, so each
transaction costs time in proportion to all a table ever held: 28 likes/s and minutes per
invocation once a table holds 10,000 items. Here the items a transaction names are saved instead
(a Put's or an Update's or a Delete's key), with the length of each table's stream, and on
cancellation those items are put back and the stream records it appended are removed. What a
client sees is unchanged: all or nothing, the same errors, no stream record of a canceled write
(tests/local_stack.rs checks it through the SDK).
"""

import copy
import sys

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.server import main


class _TablesAreNotCopied:
    """`copy` as moto's DynamoDB backend sees it: a whole table is not copied (its
    transaction's undo is done below), anything else is."""

    def deepcopy(self, value, memo=None):
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


_run_transaction = DynamoDBBackend.transact_write_items


def _saved_writes(backend, transact_items):
    """(table, hash key, range key, copy of the item or None) of each item a transaction
    writes, and (stream shard, length) of each table it writes."""
    saved, streams = [], {}
    for entry in transact_items:
        try:
            kind, operation = next(iter(entry.items()))
            table = backend.tables.get(operation.get("TableName"))
            if table is None or kind == "ConditionCheck":
                continue
            attributes = operation["Item"] if kind == "Put" else operation["Key"]
            hash_key = DynamoType(attributes[table.hash_key_attr])
            range_key = (
                DynamoType(attributes[table.range_key_attr])
                if table.range_key_attr
                else None
            )
        except (KeyError, StopIteration, TypeError, AttributeError):
            # A malformed request: the transaction refuses it before writing anything.
            continue
        if range_key is not None:
            current = table.items.get(hash_key, {}).get(range_key)
        else:
            current = table.items.get(hash_key)
        saved.append((table, hash_key, range_key, copy.deepcopy(current)))
        if table.stream_shard is not None and table.name not in streams:
            streams[table.name] = (table.stream_shard, len(table.stream_shard.items))
    return saved, streams


def transact_write_items(self, transact_items):
    saved, streams = _saved_writes(self, transact_items)
    try:
        return _run_transaction(self, transact_items)
    except Exception:
        for table, hash_key, range_key, item in reversed(saved):
            if range_key is not None:
                bucket = table.items[hash_key]
                if item is None:
                    bucket.pop(range_key, None)
                    if not bucket:
                        table.items.pop(hash_key, None)
                else:
                    bucket[range_key] = item
            elif item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        for shard, length in streams.values():
            del shard.items[length:]
        raise


dynamodb_models.copy = _TablesAreNotCopied()
DynamoDBBackend.transact_write_items = transact_write_items

if __name__ == "__main__":
    main(sys.argv[1:])
