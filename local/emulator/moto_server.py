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

A second change, to fidelity: moto's server answers requests on several threads, and its
DynamoDB writes read, change and store an item without a lock, so two concurrent updates of one
item can lose one (an `ADD` to a count, measured: one like in 10,000). DynamoDB applies writes
to an item one at a time (and cancels a transaction that collides with another:
TransactionConflict). Here every DynamoDB write takes one lock.

A third change, to strictness: DynamoDB refuses requests moto lets through. These documented
limits are checked before moto runs a request, and refused with DynamoDB's ValidationException:
- BatchWriteItem takes at most 25 requests;
- a partition key value is at most 2048 bytes and a sort key value at most 1024, in every key a
  request names (moto checks them only when it stores an item, so a read, a delete or an
  update of an oversized key passed);
- each action of a TransactWriteItems may name only the expression attribute names and values
  its expressions use (moto checks this for single writes only);
- a TransactWriteItems request is at most 4 MB;
- a Query's or a Scan's ExclusiveStartKey holds exactly the key attributes of the table and of
  the index it reads (moto starts from any map it is given, so a forged pagination cursor
  passed).

A fifth change, to reach: moto answers any origin (CORS `*`) and its `/moto-api/` (reset,
`data.json`) takes no credentials, so a web page the developer visits could read or wipe the
stack, directly or through a DNS name of its own rebound to 127.0.0.1. Here a request whose
Host is not a loopback name, or which carries an Origin (a browser's), is refused with 403
before moto sees it: programs (the SDKs, the functions) send no Origin, and browsers reach the
stack only through its fronts, which check their own origins and drop the browser's headers
(local/src/guard.rs).

A sixth change, to fidelity: moto has no RevokeToken, so a refresh token outlived sign-out.
Here RevokeToken (public, as on AWS: no signature, the client id with the token) revokes a
refresh token issued to that client: a refresh with it then fails as it does on AWS
(NotAuthorizedException "Refresh Token has been revoked"). A token that is unknown or already
revoked is answered as a success (RFC 7009), so a sign-out can be repeated. RespondToAuthChallenge
is public too, as on AWS (moto signs it off as a signed call).

A seventh change, to fidelity: moto's SRP sign-in (USER_SRP_AUTH) answers random numbers and
accepts any password claim, so a client's SRP could be wrong, and a wrong password would sign
in. Here it is Cognito's SRP-6a (the 3072-bit group of RFC 3526, SHA-256, HKDF "Caldera
Derived Key"): the server's B from the user's password verifier, and the client's
PASSWORD_CLAIM_SIGNATURE checked against it; a wrong one is NotAuthorizedException. And a
client's ExplicitAuthFlows are enforced (moto lets any flow through on any client): a flow the
client does not allow is InvalidParameterException, as on AWS.

An eighth change, to fidelity: moto authorizes a DeleteObjects as `s3:DeleteObject` on the
bucket, where AWS authorizes `s3:DeleteObject` on each key and answers a key it refuses as an
`AccessDenied` in the result's `Errors` (the other keys are deleted). So a role granted
`s3:DeleteObject` on `bucket/uploads/*` had every key refused. And moto checks each key against
the bucket's policy without the request's condition values, so the buckets'
`DenyInsecureTransport` statement (Deny `s3:*` when `aws:SecureTransport` is false) refused
every key too; on AWS it applies only to plain HTTP, which the SDKs never send. Here each key is
authorized as AWS does, and the policy is read as for a request over TLS (the emulator's
loopback endpoints stand in for AWS's TLS ones).

A fourth change, to speed only: moto's Kinesis shard copies the list of all its sequence
numbers to append one record, and walks every record from the start to serve a GetRecords. A
shard of 100,000 records made each put and each read cost milliseconds of the one emulator
process the whole stack shares. Here the shard's last sequence number is read from the end of
its (ordered) records, and a GetRecords finds its starting point by bisection over the ordered
sequence numbers. The records served, their order, the iterator and MillisBehindLatest are
moto's.
A ninth change, to reach: moto does not implement Rekognition's DetectModerationLabels (its
server answers 500, which the SDK retries as a fault, then fails). Here it is answered with a
real classifier: the image (an S3 object of this emulator, or the request's bytes) is given to
`snapglow-local moderate -` (open_nsfw run in tract: functions/resize/moderation), whose labels
come back in Rekognition's shape, those under MinConfidence left out as Rekognition does. The
request is checked as Rekognition checks it: a missing object is InvalidS3ObjectException, an
image that is neither JPEG nor PNG InvalidImageFormatException, one over 15 MB in S3 (5 MB as
bytes) ImageTooLargeException, a MinConfidence outside 0 to 100 InvalidParameterException.
Only pornography is detected (the model's one class): Rekognition's other categories are never
answered locally.

A tenth change, to fidelity: moto confirms a sign-up with any code, sends none, and has no
ResendConfirmationCode, so a client that skipped the code, or mistyped it, passed locally and
failed on AWS. Here SignUp (and ResendConfirmationCode, public as on AWS) issues a six-digit
code, delivered to the mailbox file SNAPGLOW_MAILBOX (one JSON line per message: the local
stand-in for email); ConfirmSignUp accepts only the newest code sent, once, for 24 hours, and
answers CodeMismatchException or ExpiredCodeException as Cognito does. A user created by an
administrator was sent no code, and is confirmed as moto confirms.
"""

import base64
import bisect
import copy
import datetime
import hashlib
import hmac
import os
import secrets
import time
import functools
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
import json
import re

from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.kinesis.models import Shard
from moto.s3.exceptions import BucketAccessDeniedError, S3AccessDeniedError
from moto.s3.models import FakeBucket
from moto.s3.responses import S3Response
import xmltodict
from moto.cognitoidp.exceptions import (
    InvalidParameterException,
    NotAuthorizedError,
    UserNotConfirmedException,
)
from moto.cognitoidp.models import CognitoIdpBackend, UserStatus, cognitoidp_backends
from moto.cognitoidp.responses import CognitoIdpResponse
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.responses import EmptyResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
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


_WRITES = threading.RLock()


def _one_at_a_time(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _WRITES:
            return method(*args, **kwargs)

    return locked


dynamodb_models.copy = _TablesAreNotCopied()
DynamoDBBackend.transact_write_items = _one_at_a_time(transact_write_items)
for _name in ("put_item", "update_item", "delete_item", "batch_write_item"):
    if hasattr(DynamoDBBackend, _name):
        setattr(DynamoDBBackend, _name, _one_at_a_time(getattr(DynamoDBBackend, _name)))


def _refuse(message):
    raise MockValidationException(message)


def _check_key(backend, table_name, attributes):
    """The key attributes of `attributes` (a key or an item) against DynamoDB's size limits."""
    table = backend.tables.get(table_name)
    if table is None or not isinstance(attributes, dict):
        return
    for attribute, limit, which in (
        (table.hash_key_attr, 2048, "hashkey"),
        (table.range_key_attr, 1024, "range key"),
    ):
        value = attributes.get(attribute) if attribute else None
        if value is not None and DynamoType(value).size() > limit:
            if which == "hashkey":
                _refuse(
                    "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of 2048 bytes"
                )
            _refuse(
                "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
            )


def _check_used(operation):
    """An action's expression attribute names and values must all be used."""
    text = " ".join(
        operation.get(field) or ""
        for field in (
            "ConditionExpression",
            "UpdateExpression",
            "ProjectionExpression",
        )
    )
    used_names = set(re.findall(r"#[A-Za-z0-9_]+", text))
    used_values = set(re.findall(r":[A-Za-z0-9_]+", text))
    for kind, provided, used in (
        ("Names", operation.get("ExpressionAttributeNames") or {}, used_names),
        ("Values", operation.get("ExpressionAttributeValues") or {}, used_values),
    ):
        for name in provided:
            if name not in used:
                _refuse(
                    f"Value provided in ExpressionAttribute{kind} unused in expressions: keys: {{{name}}}"
                )


def _check_start_key(backend, body):
    """An ExclusiveStartKey names exactly the table's key attributes and its index's."""
    start = body.get("ExclusiveStartKey")
    table = backend.tables.get(body.get("TableName"))
    if not start or table is None:
        return
    names = {table.hash_key_attr, table.range_key_attr} - {None}
    index_name = body.get("IndexName")
    if index_name:
        for index in list(table.global_indexes or []) + list(table.indexes or []):
            if index.name == index_name:
                names |= {key["AttributeName"] for key in index.schema}
    if set(start) != names:
        _refuse(
            "The provided starting key is invalid: The provided key element does not match the schema"
        )


def _strict(handler):
    """Checks the request of a DynamoHandler method before moto runs it."""
    name = handler.__name__

    @functools.wraps(handler)
    def checked(self):
        body = self.body
        backend = self.dynamodb_backend
        if name in ("get_item", "delete_item", "update_item"):
            _check_key(backend, body.get("TableName"), body.get("Key"))
        elif name in ("query", "scan"):
            _check_start_key(backend, body)
        elif name == "batch_get_item":
            for table_name, request in (body.get("RequestItems") or {}).items():
                for key in request.get("Keys") or []:
                    _check_key(backend, table_name, key)
        elif name == "batch_write_item":
            requests = body.get("RequestItems") or {}
            if sum(len(r) for r in requests.values()) > 25:
                _refuse(
                    "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"
                )
            for table_name, table_requests in requests.items():
                for request in table_requests:
                    for kind, operation in request.items():
                        key = operation.get("Item" if kind == "PutRequest" else "Key")
                        _check_key(backend, table_name, key)
        elif name == "transact_write_items":
            if len(json.dumps(body, default=str).encode()) > 4 * 1024 * 1024:
                _refuse("Transaction request cannot be larger than 4 MB")
            for action in body.get("TransactItems") or []:
                for kind, operation in action.items():
                    key = operation.get("Item" if kind == "Put" else "Key")
                    _check_key(backend, operation.get("TableName"), key)
                    _check_used(operation)
        return handler(self)

    return checked


for _name in (
    "get_item",
    "delete_item",
    "update_item",
    "batch_get_item",
    "batch_write_item",
    "transact_write_items",
    "query",
    "scan",
):
    setattr(DynamoHandler, _name, _strict(getattr(DynamoHandler, _name)))

def _max_sequence_number(self):
    """The newest sequence number: the last key of the ordered records, without a copy."""
    return next(reversed(self.records)) if self.records else 0


def _get_records(self, last_sequence_id, limit):
    """moto's Shard.get_records, starting by bisection instead of a walk from the start."""
    after = int(last_sequence_id)
    sequence_numbers = list(self.records)  # ascending: records are appended in order
    start = bisect.bisect_right(sequence_numbers, after)
    chosen = sequence_numbers[start:] if limit is None else sequence_numbers[start : start + limit]
    results = [self.records[n] for n in chosen]
    if not results:
        return results, after, 0
    newest = self.records[sequence_numbers[-1]]
    millis_behind_latest = int((newest.created_at - results[-1].created_at) * 1000)
    return results, chosen[-1], millis_behind_latest


Shard.get_max_sequence_number = _max_sequence_number
Shard.get_records = _get_records

def _revoke_token(self):
    token = self._get_param("Token")
    client_id = self._get_param("ClientId")
    for by_region in cognitoidp_backends.values():
        for backend in by_region.values():
            for pool in backend.user_pools.values():
                held = pool.refresh_tokens.get(token)
                if held is None:
                    continue
                if held[0] != client_id:
                    raise NotAuthorizedError("the token was not issued to this client")
                pool.refresh_tokens[token] = None  # moto's mark of a revoked refresh token
    return EmptyResult()


CognitoIdpResponse.revoke_token = _revoke_token
ActionAuthenticatorMixin.PUBLIC_OPERATIONS.extend(
    [
        "AWSCognitoIdentityProviderService.RevokeToken",
        "AWSCognitoIdentityProviderService.RespondToAuthChallenge",
    ]
)

_N = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E34"
    "04DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6"
    "F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A6916"
    "3FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C"
    "32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA95"
    "6AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA7157"
    "5D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D876"
    "02733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E"
    "4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16,
)
_G = 2


def _pad(number):
    """Cognito's padHex: an even number of digits, and a leading 00 where the first is >= 8."""
    text = f"{number:x}"
    if len(text) % 2:
        return "0" + text
    return "00" + text if text[0] in "89abcdef" else text


def _hex_hash(hex_text):
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


_K = int(_hex_hash(_pad(_N) + _pad(_G)), 16)
# PASSWORD_VERIFIER challenges issued, by SECRET_BLOCK: what the check of the claim needs. A
# challenge is answered once, within the client's session validity (3 minutes by default).
_SRP_CHALLENGES = {}
_SRP_CHALLENGE_SECONDS = 180
# The TIMESTAMP of a claim, as Cognito's clients write it: "Mon Dec 7 18:00:00 UTC 2026".
_TIMESTAMP = re.compile(
    r"^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"([1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9] UTC [0-9]{4}$"
)
_FLOWS = {
    "USER_SRP_AUTH": ("ALLOW_USER_SRP_AUTH",),
    "USER_PASSWORD_AUTH": ("ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"),
    "REFRESH_TOKEN_AUTH": ("ALLOW_REFRESH_TOKEN_AUTH",),
    "REFRESH_TOKEN": ("ALLOW_REFRESH_TOKEN_AUTH",),
    "CUSTOM_AUTH": ("ALLOW_CUSTOM_AUTH", "CUSTOM_AUTH_FLOW_ONLY"),
}
_initiate_auth = CognitoIdpBackend.initiate_auth
_respond_to_auth_challenge = CognitoIdpBackend.respond_to_auth_challenge


def _srp_initiate_auth(self, client_id, auth_flow, auth_parameters):
    pool = next((p for p in self.user_pools.values() if client_id in p.clients), None)
    if pool is not None:
        allowed = pool.clients[client_id].extended_config.get("ExplicitAuthFlows")
        if allowed and not set(_FLOWS.get(auth_flow, (auth_flow,))) & set(allowed):
            raise InvalidParameterException(f"{auth_flow} flow not enabled for this client")
    if auth_flow != "USER_SRP_AUTH" or pool is None:
        return _initiate_auth(self, client_id, auth_flow, auth_parameters)
    user = self.admin_get_user(pool.id, auth_parameters.get("USERNAME"))
    if not user.enabled:
        raise NotAuthorizedError("User is disabled.")
    if user.status is UserStatus.UNCONFIRMED:
        raise UserNotConfirmedException("User is not confirmed.")
    try:
        big_a = int(auth_parameters.get("SRP_A") or "0", 16)
    except ValueError:
        big_a = 0
    if big_a % _N == 0:
        raise InvalidParameterException("SRP_A is not a valid SRP value")
    now = time.time()
    for stale in [b for b, c in _SRP_CHALLENGES.items() if now - c[-1] > _SRP_CHALLENGE_SECONDS]:
        _SRP_CHALLENGES.pop(stale, None)
        self.sessions.pop(stale, None)
    pool_name = pool.id.split("_", 1)[1]
    salt = secrets.randbits(128)
    secret = hashlib.sha256(f"{pool_name}{user.username}:{user.password}".encode()).hexdigest()
    x = int(_hex_hash(_pad(salt) + secret), 16)
    verifier = pow(_G, x, _N)
    small_b = secrets.randbits(1024)
    big_b = (_K * verifier + pow(_G, small_b, _N)) % _N
    secret_block = base64.b64encode(secrets.token_bytes(64)).decode()
    self.sessions[secret_block] = (user.username, pool)
    _SRP_CHALLENGES[secret_block] = (
        big_a, big_b, small_b, verifier, pool_name, user.username, client_id, now
    )
    return {
        "ChallengeName": "PASSWORD_VERIFIER",
        "ChallengeParameters": {
            "SALT": f"{salt:x}",
            "SRP_B": f"{big_b:x}",
            "USERNAME": user.username,
            "USER_ID_FOR_SRP": user.username,
            "SECRET_BLOCK": secret_block,
        },
    }


def _srp_respond_to_auth_challenge(self, session, client_id, challenge_name, responses):
    if challenge_name == "PASSWORD_VERIFIER":
        secret_block = responses.get("PASSWORD_CLAIM_SECRET_BLOCK", "")
        challenge = _SRP_CHALLENGES.pop(secret_block, None)
        timestamp = responses.get("TIMESTAMP", "")
        if not _TIMESTAMP.match(timestamp):
            self.sessions.pop(secret_block, None)
            raise InvalidParameterException(f"TIMESTAMP {timestamp!r} is not in Cognito's format")
        if challenge is None or not _claim_holds(challenge, client_id, secret_block, responses):
            self.sessions.pop(secret_block, None)
            raise NotAuthorizedError("Incorrect username or password.")
    return _respond_to_auth_challenge(self, session, client_id, challenge_name, responses)


def _claim_holds(challenge, client_id, secret_block, responses):
    """Whether PASSWORD_CLAIM_SIGNATURE is the one only the user's password could make, sent
    to the client the challenge was issued to, within its validity and its clock."""
    big_a, big_b, small_b, verifier, pool_name, user_id, issued_to, issued_at = challenge
    if responses.get("USERNAME") != user_id or client_id != issued_to:
        return False
    if time.time() - issued_at > _SRP_CHALLENGE_SECONDS:
        return False
    stamped = datetime.datetime.strptime(responses["TIMESTAMP"], "%a %b %d %H:%M:%S UTC %Y")
    skew = abs(stamped.replace(tzinfo=datetime.timezone.utc).timestamp() - time.time())
    if skew > 300:
        return False
    u = int(_hex_hash(_pad(big_a) + _pad(big_b)), 16)
    if u == 0:
        return False
    shared = pow(big_a * pow(verifier, u, _N), small_b, _N)
    prk = hmac.new(bytes.fromhex(_pad(u)), bytes.fromhex(_pad(shared)), hashlib.sha256).digest()
    key = hmac.new(prk, b"Caldera Derived Key\x01", hashlib.sha256).digest()[:16]
    message = (
        pool_name.encode()
        + user_id.encode()
        + base64.b64decode(secret_block)
        + responses.get("TIMESTAMP", "").encode()
    )
    expected = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
    claimed = responses.get("PASSWORD_CLAIM_SIGNATURE", "")
    return hmac.compare_digest(expected.encode(), claimed.encode())


CognitoIdpBackend.initiate_auth = _srp_initiate_auth
CognitoIdpBackend.respond_to_auth_challenge = _srp_respond_to_auth_challenge

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_dispatch = DomainDispatcherApplication.__call__


def _loopback(host):
    """Whether a Host header names this machine (a loopback name, with or without a port)."""
    name, _, port = host.rpartition(":")
    if not name or not port.isdigit():
        name = host
    return name.lower() in _LOOPBACK


def _only_this_machines_programs(self, environ, start_response):
    host = environ.get("HTTP_HOST", "")
    if not _loopback(host):
        why = f"Host {host!r} is not this machine: the emulator answers only 127.0.0.1 or localhost"
    elif "HTTP_ORIGIN" in environ:
        why = "the emulator takes no browser: pages reach the local stack through its fronts"
    else:
        return _dispatch(self, environ, start_response)
    body = why.encode()
    start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


DomainDispatcherApplication.__call__ = _only_this_machines_programs


def _only_over_plain_http(statement):
    """Whether a statement applies only to requests over plain HTTP (its one condition is
    `aws:SecureTransport` false)."""
    condition = statement.get("Condition") or {}
    values = condition.get("Bool", {}).get("aws:SecureTransport") if len(condition) == 1 else None
    if isinstance(values, list) and len(values) == 1:
        values = values[0]
    return len(condition.get("Bool", {})) == 1 and str(values).lower() == "false"


# The keys of the DeleteObjects being answered on this thread that its caller may not delete.
_refused_keys = threading.local()


def _permission_over_tls(self, action, resource):
    """The bucket policy's verdict for a request over TLS, and a refusal for a key its caller
    may not delete. (moto's own evaluation reads a condition it cannot verify as a refusal,
    whatever the statement's effect.)"""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if resource.split("/", 1)[-1] in getattr(_refused_keys, "keys", ()):
        return PermissionResult.DENIED
    if self.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(self.policy.decode())
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    document["Statement"] = [s for s in statements if not _only_over_plain_http(s)]
    if not document["Statement"]:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)


FakeBucket.get_permission = _permission_over_tls

_bucket_response_post = S3Response._bucket_response_post


def _delete_keys_authorized_per_key(self, request, bucket_name):
    self.path = self._get_path(request)
    if not self.is_delete_keys() or not request.headers.get("Content-Length"):
        return _bucket_response_post(self, request, bucket_name)
    self.data["Action"] = "DeleteObject"
    try:
        objects = xmltodict.parse(self.body)["Delete"].get("Object", [])
    except Exception:
        objects = []
    if not isinstance(objects, list):
        objects = [objects]
    refused = set()
    for obj in objects:
        key = obj.get("Key") if isinstance(obj, dict) else None
        try:
            self._authenticate_and_authorize_s3_action(bucket_name=bucket_name, key_name=key)
        except (BucketAccessDeniedError, S3AccessDeniedError):
            refused.add(key)
    _refused_keys.keys = refused
    try:
        return self._bucket_response_delete_keys(bucket_name)
    finally:
        _refused_keys.keys = ()


S3Response._bucket_response_post = _delete_keys_authorized_per_key


# DetectModerationLabels (the ninth change): the classifier's command and model, from the
# environment the local stack starts the emulator with.
from moto.core.exceptions import JsonRESTError
from moto.rekognition.responses import RekognitionResponse
import subprocess

_S3_IMAGE_LIMIT = 15 * 1024 * 1024
_BYTES_IMAGE_LIMIT = 5 * 1024 * 1024


def _detect_moderation_labels(self):
    from moto.s3.models import s3_backends
    from moto.s3.exceptions import MissingBucket

    params = json.loads(self.body or "{}")
    image = params.get("Image") or {}
    try:
        min_confidence = float(params.get("MinConfidence", 50))
    except (TypeError, ValueError):
        min_confidence = -1
    if not 0 <= min_confidence <= 100:
        raise JsonRESTError("InvalidParameterException", "MinConfidence must be from 0 to 100")
    if "S3Object" in image:
        where = image["S3Object"] or {}
        bucket, name = where.get("Bucket", ""), where.get("Name", "")
        try:
            found = s3_backends[self.current_account]["aws"].get_object(bucket, name)
        except MissingBucket:
            found = None
        if found is None:
            raise JsonRESTError(
                "InvalidS3ObjectException", "Unable to get object metadata from S3. Check object key, region and/or access permissions."
            )
        data = found.value
        if len(data) > _S3_IMAGE_LIMIT:
            raise JsonRESTError("ImageTooLargeException", "Image size is too large.")
    elif "Bytes" in image:
        data = base64.b64decode(image["Bytes"])
        if len(data) > _BYTES_IMAGE_LIMIT:
            raise JsonRESTError("ImageTooLargeException", "Image size is too large.")
    else:
        raise JsonRESTError("InvalidParameterException", "Image needs S3Object or Bytes")
    if not (data.startswith(b"\xff\xd8") or data.startswith(b"\x89PNG")):
        raise JsonRESTError("InvalidImageFormatException", "Request has invalid image format")
    command = os.environ.get("SNAPGLOW_CLASSIFIER", "")
    model = os.environ.get("MODERATION_MODEL_PATH", "")
    try:
        done = subprocess.run(
            [command, "moderate", "--model", model, "-"],
            input=data,
            capture_output=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        done = None
        detail = f"{command or 'SNAPGLOW_CLASSIFIER (unset)'}: {error}"
    if done is None or done.returncode != 0:
        if done is not None:
            detail = done.stderr.decode(errors="replace").strip()[-500:]
        print(f"DetectModerationLabels: the local classifier failed: {detail}", file=sys.stderr)
        error = JsonRESTError("InternalServerError", f"the local classifier failed: {detail}")
        error.code = 500
        raise error
    answer = json.loads(done.stdout)
    answer["ModerationLabels"] = [
        label for label in answer["ModerationLabels"] if label["Confidence"] >= min_confidence
    ]
    return json.dumps(answer)


RekognitionResponse.detect_moderation_labels = _detect_moderation_labels


# Sign-up codes (the tenth change).
_CODE_SECONDS = 24 * 3600
_CODES = {}  # (client id, username lower-cased) -> (code, issued at)
_CODES_LOCK = threading.Lock()


def _deliver_code(client_id, username, to):
    code = f"{secrets.randbelow(1_000_000):06d}"
    with _CODES_LOCK:
        _CODES[(client_id, username.lower())] = (code, time.time())
    mailbox = os.environ.get("SNAPGLOW_MAILBOX")
    if mailbox:
        os.makedirs(os.path.dirname(mailbox), exist_ok=True)
        line = {
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "to": to,
            "username": username,
            "subject": "Your verification code",
            "code": code,
        }
        with open(mailbox, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
    return code


def _email_of(attributes, username):
    for attribute in attributes or []:
        if attribute.get("Name") == "email":
            return attribute.get("Value", "")
    return f"{username}'s email"


_sign_up = CognitoIdpResponse.sign_up


def _sign_up_with_code(self):
    answer = _sign_up(self)
    username = self._get_param("Username")
    _deliver_code(
        self._get_param("ClientId"), username, _email_of(self._get_param("UserAttributes", []), username)
    )
    return answer


def _resend_confirmation_code(self):
    client_id = self._get_param("ClientId")
    username = self._get_param("Username")
    pool = next((p for p in _pools() if client_id in p.clients), None)
    user = pool._get_user(username) if pool else None
    if user is None:
        # The client prevents user existence errors: an unknown user is answered alike.
        raise JsonRESTError("UserNotFoundException", "Username/client id combination not found.")
    to = user.attribute_lookup.get("email", f"{username}'s email")
    _deliver_code(client_id, username, to)
    return json.dumps(
        {"CodeDeliveryDetails": {"Destination": _masked(to), "DeliveryMedium": "EMAIL", "AttributeName": "email"}}
    )


def _pools():
    for by_region in cognitoidp_backends.values():
        for backend in by_region.values():
            yield from backend.user_pools.values()


def _masked(email):
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain[:1]}***" if domain else "***"


_confirm_sign_up = CognitoIdpResponse.confirm_sign_up


def _confirm_sign_up_with_code(self):
    key = (self._get_param("ClientId"), (self._get_param("Username") or "").lower())
    given = (self._get_param("ConfirmationCode") or "").strip()
    with _CODES_LOCK:
        sent = _CODES.get(key)
        if sent is not None:
            code, issued = sent
            if time.time() - issued > _CODE_SECONDS:
                raise JsonRESTError("ExpiredCodeException", "Invalid code provided, please request a code again.")
            if given != code:
                raise JsonRESTError("CodeMismatchException", "Invalid verification code provided, please try again.")
            del _CODES[key]
    return _confirm_sign_up(self)


CognitoIdpResponse.sign_up = _sign_up_with_code
CognitoIdpResponse.resend_confirmation_code = _resend_confirmation_code
CognitoIdpResponse.confirm_sign_up = _confirm_sign_up_with_code
ActionAuthenticatorMixin.PUBLIC_OPERATIONS.append(
    "AWSCognitoIdentityProviderService.ResendConfirmationCode"
)

if __name__ == "__main__":
    main(sys.argv[1:])
