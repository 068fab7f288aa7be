"""moto server for the devstack, with DynamoDB transactions made atomic as in AWS, and
DynamoDB requests served without most of moto's per-request overhead (see Speed below).

Run as `python -c <this file> PORT`. It exits when its standard input closes, so it never
outlives the devstack (even one killed with SIGKILL, which runs no cleanup).

moto applies a transaction item by item and, when an item fails, puts back copies of the
tables taken before it began. Two things would show through, and both broke the event
path: a request served meanwhile could see the cancelled writes (or have its own write
undone by the rollback), and a stream iterator taken earlier would keep reading the
discarded table's shard, cancelled records included, and never see another record.
So DynamoDB and DynamoDB Streams requests run one at a time, and a rollback restores the
items the transaction named in the live tables, truncating their stream shard where it
was (and no table is copied: see TablesStayLive).
"""

import os
import sys
import threading

threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

import copy  # noqa: E402
import functools  # noqa: E402

import flask  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

import moto.backends  # noqa: E402
import moto.core.responses  # noqa: E402
import moto.dynamodb.models as dynamodb_models  # noqa: E402
from moto.dynamodb.models import DynamoDBBackend  # noqa: E402
from moto.dynamodb.models.table import Table  # noqa: E402
from moto.dynamodb.responses import DynamoHandler  # noqa: E402
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler  # noqa: E402
from moto.moto_api import recorder  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402
from moto.server import main  # noqa: E402
from werkzeug.serving import WSGIRequestHandler  # noqa: E402

dynamodb_lock = threading.RLock()


def one_at_a_time(call):
    def locked(self):
        with dynamodb_lock:
            return call(self)

    return locked


def counted(call):
    # One line per DynamoDB request on standard error (moto.err.log): benchmarks count them.
    def count(self):
        # One write(2) of the whole line: print() writes the text and its newline apart,
        # and werkzeug's access log, written from other threads, could land in between.
        os.write(2, f"shutter-dynamodb-request {self._get_action()}\n".encode())
        return call(self)

    return count


DynamoHandler.call_action = one_at_a_time(counted(DynamoHandler.call_action))
DynamoDBStreamsHandler.call_action = one_at_a_time(DynamoDBStreamsHandler.call_action)

transact_write_items = DynamoDBBackend.transact_write_items


class TablesStayLive:
    """Stands in for the `copy` module inside moto's DynamoDB models during a
    transaction: moto deep-copies every table a transaction touches, once per item, to
    roll back, which costs time in proportion to the table's size (seconds per
    transaction once a table holds a few thousand items). The rollback below restores only
    the items the transaction names, so tables need no copy; anything else is copied as
    before."""

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def touched_items(backend, transact_items):
    """(table, hash key, range key, a copy of the item as it is) for each item named."""
    touched = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        if "Item" in op:
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        hash_key, range_key = backend.get_keys_value(table, key)
        touched.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return touched


def put_back(table, hash_key, range_key, old):
    items = table.items[hash_key] if range_key is not None else table.items
    slot = range_key if range_key is not None else hash_key
    if old is None:
        items.pop(slot, None)
    else:
        items[slot] = old


def atomic_transact_write_items(self, transact_items):
    try:
        touched = touched_items(self, transact_items)
    except Exception:
        # A malformed request: moto's own validation answers it.
        return transact_write_items(self, transact_items)
    streams = {
        id(table): (table, len(table.stream_shard.items))
        for table, _, _, _ in touched
        if table.stream_shard is not None
    }
    dynamodb_models.copy = TablesStayLive
    try:
        return transact_write_items(self, transact_items)
    except BaseException:
        for table, hash_key, range_key, old in reversed(touched):
            put_back(table, hash_key, range_key, old)
            self.tables[table.name] = table
        for table, length in streams.values():
            del table.stream_shard.items[length:]
        raise
    finally:
        dynamodb_models.copy = copy


DynamoDBBackend.transact_write_items = atomic_transact_write_items

# Speed: a function's cold start often waits on one DynamoDB request, and moto spent most
# of it outside DynamoDB (profiled with py-spy). Two things it did on every request cannot
# change while it runs: list its own package directory (a listdir and an isdir per entry,
# under the dispatcher's global lock) to find the request's service, and list a handler's
# methods with inspect. They are done once now. With `dynamodb_first` and
# `quiet_when_counted` below, outbox-sweeper's cold start (one Scan) went from 2.45x to
# 1.95x the floor's (README, the coldstart-bench rows).
_list_of_moto_modules = moto.backends.list_of_moto_modules
moto.backends.list_of_moto_modules = functools.cache(lambda: frozenset(_list_of_moto_modules()))
moto.core.responses.method_names_from_class = functools.cache(
    moto.core.responses.method_names_from_class
)


def dynamodb_first(self, environ, start_response):
    """DynamoDB and Streams requests straight to their handlers, as moto's Flask app for
    them does (same request class, same handler, same answer to a ClientError), without
    the Flask request cycle around them. Everything else goes the usual way."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    handler = next((h for prefix, h in JSON_HANDLERS if target.startswith(prefix)), None)
    if handler is None:
        return dispatch(self, environ, start_response)
    request = flask.Request(environ)
    try:
        recorder._record_request(request)
        status, headers, body = handler.dispatch(request, request.url, dict(request.headers))
    except ClientError as exc:
        status, headers, body = 400, {}, exc.response["Error"]["Message"]
    return flask.Response(response=body, status=status, headers=headers)(environ, start_response)


def quiet_when_counted(self, code="-", size="-"):
    """No access-log line for an answered DynamoDB or Streams request: each would read
    "POST / 200" (`counted` already names the operation), and the devstack's stream polling
    alone made dozens a second. Failed ones are still logged."""
    target = self.headers.get("X-Amz-Target", "")
    if str(code) != "200" or not target.startswith(tuple(p for p, _ in JSON_HANDLERS)):
        log_request(self, code, size)


JSON_HANDLERS = (
    ("DynamoDB_20120810.", DynamoHandler),
    ("DynamoDBStreams_20120810.", DynamoDBStreamsHandler),
)
dispatch = DomainDispatcherApplication.__call__
DomainDispatcherApplication.__call__ = dynamodb_first
log_request = WSGIRequestHandler.log_request
WSGIRequestHandler.log_request = quiet_when_counted

main(["-H", "127.0.0.1", "-p", sys.argv[1]])
