"""HTTP routes of the open API for providers (電子決済等代行業者) under /openapi/v1 (docs/openapi.md): the OAuth 2
token and revocation endpoints, consents, and the data and payment calls on consented accounts.

Every call goes through `_serve`, which answers every refusal in the OAuth error shape and writes the call's
access-log row. Requests are authenticated, rate-limited and counted before their parameters are looked at, so an
unauthenticated caller learns nothing from validation; the channel validates bodies itself for that reason.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import structlog
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from kanjo.channels.openapi import access_log, consents, errors, oauth, resources, transfers
from kanjo.channels.openapi.access import Caller, admit, authenticate, require_scope
from kanjo.channels.openapi.errors import ApiError
from kanjo.channels.openapi.limits import IDEMPOTENCY_KEY_CHARS_MAX, REQUEST_BODY_BYTES_MAX
from kanjo.channels.openapi.model import ConsentTerms, Invalid, NotFound, Refused, Scope, account_label
from kanjo.channels.openapi.schemas import (
    BalanceOut,
    ConsentIn,
    ConsentOut,
    OAuthErrorOut,
    StatementOut,
    TokenOut,
    TransferIn,
    TransferOut,
)
from kanjo.channels.openapi.service import OpenApiChannel
from kanjo.channels.openapi.store import ClientRow, ConsentRow
from kanjo.deposits import NotFound as DepositNotFound
from kanjo.deposits import Refused as DepositRefused
from kanjo.hub import HubError
from kanjo.kernel.limits import LimitReached
from kanjo.platform.http import FastJSONResponse

M = TypeVar("M", bound=BaseModel)
log = structlog.get_logger("kanjo.openapi")
router = APIRouter(prefix="/openapi/v1", tags=["open API for providers"])
IDEMPOTENCY_KEY = re.compile(rf"^[A-Za-z0-9._:~-]{{1,{IDEMPOTENCY_KEY_CHARS_MAX}}}$")
BRANCH_CODE = re.compile(r"^[0-9]{3}$")
ACCOUNT_NUMBER = re.compile(r"^(?!0000000)[0-9]{7}$")
UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
BranchPath = Path(description="支店番号: 3 digits")
NumberPath = Path(description="口座番号: 7 digits")


def _error_doc(description: str, *headers: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": OAuthErrorOut, "description": description}
    if headers:
        doc["headers"] = {h: {"schema": {"type": "string"}, "required": True} for h in headers}
    return doc


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error_doc("invalid_request: a malformed request or parameter (named)"),
    401: _error_doc("invalid_token (RFC 6750) or invalid_client (RFC 6749)", "WWW-Authenticate"),
    403: _error_doc("insufficient_scope, consent_required, or a consent maximum exceeded"),
    404: _error_doc("not_found: no such consent or transfer of this client"),
    409: _error_doc("a refusal that depends on the state (insufficient_funds, request_in_progress, …)"),
    422: _error_doc("invalid_request with `fields`, idempotency_key_reused, unknown_payee, …"),
    429: _error_doc("rate_limited or quota_exceeded", "Retry-After"),
    503: _error_doc("temporarily_unavailable: retry after Retry-After with the same Idempotency-Key",
                    "Retry-After"),
}


def _responses(ok: int, model: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    return {ok: {"model": model}, **{s: ERRORS[s] for s in (400, 401, 429, 503, *statuses)}}


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _ch(request: Request) -> OpenApiChannel:
    return request.app.state.openapi


Work = Callable[[OpenApiChannel, access_log.CallRecord], Awaitable[Reply]]


async def _serve(request: Request, route: str, work: Work, *, extra_headers: dict[str, str] | None = None
                 ) -> Response:
    """Run one call: every outcome becomes an answer in the OAuth error shape, and one access-log row."""
    ch = _ch(request)
    call = access_log.CallRecord(request.method, route, ch.monotonic(), ch.now())
    status, outcome = 500, "internal_error"
    try:
        try:
            reply = await work(ch, call)
        except Exception as e:
            reply = _refusal(e)
        status = reply.status
        outcome = str(reply.body.get("error", "ok")) if status >= 400 else "ok"
    finally:
        await access_log.record(ch, call, status, outcome)
    headers = {**reply.headers, **(extra_headers or {}), "X-Request-Id": str(uuid.UUID(int=call.request_id))}
    return FastJSONResponse(reply.body, status_code=reply.status, headers=headers)


def _refusal(e: Exception) -> Reply:
    """The answer to a refusal or a system condition; anything else is a programmer error (500, logged)."""
    if isinstance(e, ApiError):
        err = e
    elif isinstance(e, Invalid):
        err = ApiError(422, "invalid_request", f"{e.field}: {e}", fields=[{"field": e.field, "message": str(e)}])
    elif isinstance(e, Refused):
        err = ApiError(422 if e.code == "idempotency_key_reused" else 409, e.code, str(e))
    elif isinstance(e, NotFound):
        err = ApiError(404, "not_found", str(e))
    elif isinstance(e, LimitReached):
        err = ApiError(409, "limit_reached", str(e), limit=e.limit.name, maximum=e.limit.maximum)
    elif isinstance(e, DepositRefused):  # the consented account cannot be served now (frozen, closed, …)
        err = ApiError(409, e.code, str(e))
    elif isinstance(e, DepositNotFound):
        err = ApiError(409, "account_unavailable", "the consented account is no longer served")
    elif isinstance(e, HubError):
        err = errors.unavailable(e.message, e.retry_after_s)
    elif isinstance(e, asyncpg.PostgresError | asyncpg.InterfaceError | OSError | TimeoutError):
        log.error("openapi_storage_error", error=repr(e))
        err = errors.unavailable("the bank's systems did not answer; the outcome is unknown: retry with the same"
                                 " Idempotency-Key", 1)
    else:
        raise e
    return Reply(err.status, err.body(), err.headers)


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > REQUEST_BODY_BYTES_MAX:
        raise errors.invalid_request(f"the body is over {REQUEST_BODY_BYTES_MAX:,} bytes",
                                     limit="openapi_request_body_bytes_max", maximum=REQUEST_BODY_BYTES_MAX)
    body = await request.body()
    if len(body) > REQUEST_BODY_BYTES_MAX:
        raise errors.invalid_request(f"the body is over {REQUEST_BODY_BYTES_MAX:,} bytes",
                                     limit="openapi_request_body_bytes_max", maximum=REQUEST_BODY_BYTES_MAX)
    return body


async def _json(request: Request, model: type[M]) -> M:
    body = await _body(request)
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        problems = e.errors(include_url=False, include_input=False)
        if any(p.get("type") == "json_invalid" for p in problems):
            raise errors.invalid_request("the body is not valid JSON") from None
        fields = [{"field": ".".join(str(x) for x in p.get("loc", ())), "message": p.get("msg", "")}
                  for p in problems[:20]]
        first = fields[0] if fields else {"field": "", "message": "invalid body"}
        raise ApiError(422, "invalid_request", f"{first['field']}: {first['message']}", fields=fields) from None


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if key is None:
        raise errors.invalid_request("the Idempotency-Key header is required: the same key for every retry")
    if not IDEMPOTENCY_KEY.match(key):
        raise errors.invalid_request(f"Idempotency-Key is 1 to {IDEMPOTENCY_KEY_CHARS_MAX} of A-Z a-z 0-9 . _ : ~ -")
    return key


def _uuid(text: str, name: str) -> int:
    if not UUID_TEXT.match(text):
        raise errors.invalid_request(f"{name} is a UUID")
    return uuid.UUID(text).int


async def _caller(ch: OpenApiChannel, call: access_log.CallRecord, request: Request, scope: Scope | None) -> Caller:
    """Authenticated, within its rate and quota, and (when named) carrying the scope."""
    caller = await authenticate(ch, request.headers.get("authorization"))
    call.client_id = caller.client_id
    await admit(ch, caller.client_id, caller.rate_per_s, caller.burst, caller.daily_quota)
    if scope is not None:
        require_scope(caller, scope)
    return caller


async def _consented(ch: OpenApiChannel, call: access_log.CallRecord, caller: Caller, branch_code: str,
                     account_number: str, scope: Scope) -> ConsentRow:
    if not BRANCH_CODE.match(branch_code) or not ACCOUNT_NUMBER.match(account_number):
        raise errors.invalid_request("an account is a 3-digit branch code and a 7-digit account number")
    call.account = account_label(branch_code, int(account_number))
    consent = await consents.require_consent(ch, caller.client_id, branch_code, int(account_number), scope)
    call.consent_id = consent.consent_id
    return consent


# -- OAuth 2 -------------------------------------------------------------------------------------------------------

FORM_BODY = {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "scope": {"type": "string", "description": "space-separated: balance statement transfer"},
        "client_id": {"type": "string", "description": "client_secret_post (or use HTTP Basic)"},
        "client_secret": {"type": "string"}},
    "required": ["grant_type"]}}}}}
REVOKE_BODY = {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "properties": {
        "token": {"type": "string"}, "token_type_hint": {"type": "string"},
        "client_id": {"type": "string"}, "client_secret": {"type": "string"}},
    "required": ["token"]}}}}}


async def _client_of(ch: OpenApiChannel, call: access_log.CallRecord,
                     request: Request) -> tuple[ClientRow, dict[str, str]]:
    form = oauth.parse_form(await _body(request), request.headers.get("content-type"))
    client = await oauth.authenticate_client(ch, oauth.client_credentials(form, request.headers.get("authorization")))
    call.client_id = client.client_id
    oauth.require_active(client)
    return client, form


@router.post("/oauth/token", summary="Access token by the client credentials grant (RFC 6749 §4.4)",
             openapi_extra=FORM_BODY, responses=_responses(200, TokenOut))
async def token(request: Request) -> Response:
    async def work(ch: OpenApiChannel, call: access_log.CallRecord) -> Reply:
        client, form = await _client_of(ch, call, request)
        return Reply(200, await oauth.issue_token(ch, client, form))

    return await _serve(request, "/oauth/token", work, extra_headers=oauth.NO_STORE)


@router.post("/oauth/revoke", summary="Revoke an access token (RFC 7009)", openapi_extra=REVOKE_BODY,
             responses=_responses(200, OAuthErrorOut))
async def revoke(request: Request) -> Response:
    async def work(ch: OpenApiChannel, call: access_log.CallRecord) -> Reply:
        client, form = await _client_of(ch, call, request)
        await oauth.revoke_token(ch, client, form)
        return Reply(200, {})

    return await _serve(request, "/oauth/revoke", work, extra_headers=oauth.NO_STORE)


# -- consents --------------------------------------------------------------------------------------------------

def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` (enums) written in place: it is documented inside an operation, where
    a local reference would not resolve."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = _inlined(model.model_json_schema())
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": True,
                            "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY.pattern}}]}


@router.post("/consents", summary="Ask the customer for consent on one account (pending until authorised)",
             openapi_extra=_json_body(ConsentIn), responses=_responses(201, ConsentOut, 403, 409, 422))
async def request_consent(request: Request) -> Response:
    async def work(ch: OpenApiChannel, call: access_log.CallRecord) -> Reply:
        caller = await _caller(ch, call, request, None)
        key = _idempotency_key(request)
        body = await _json(request, ConsentIn)
        call.account = account_label(body.branch_code, int(body.account_number))
        terms = ConsentTerms(frozenset(body.scopes), body.expires_at, body.transfer_max_minor,
                             body.daily_transfer_max_minor)
        row, replayed = await consents.request_consent(ch, caller, consents.ConsentRequest(
            key, body.branch_code, int(body.account_number), terms))
        call.consent_id = row.consent_id
        return Reply(201, {**consents.consent_view(row, ch.now()), "replayed": replayed})

    return await _serve(request, "/consents", work)


@router.get("/consents/{consent_id}", summary="One of this client's consents", responses=_responses(
    200, ConsentOut, 404))
async def get_consent(consent_id: str, request: Request) -> Response:
    async def work(ch: OpenApiChannel, call: access_log.CallRecord) -> Reply:
        caller = await _caller(ch, call, request, None)
        row = await consents.get_consent(ch, _uuid(consent_id, "consent_id"), caller.client_id)
        call.consent_id = row.consent_id
        return Reply(200, consents.consent_view(row, ch.now()))

    return await _serve(request, "/consents/{consent_id}", work)


@router.delete("/consents/{consent_id}", summary="The provider ends one of its consents (from the next call on)",
               responses=_responses(200, ConsentOut, 404))
async def delete_consent(consent_id: str, request: Request) -> Response:
    async def work(ch: OpenApiChannel, call: access_log.CallRecord) -> Reply:
        caller = await _caller(ch, call, request, None)
        row = await consents.revoke_by_provider(ch, caller, _uuid(consent_id, "consent_id"))
        call.consent_id = row.consent_id
        return Reply(200, consents.consent_view(row, ch.now()))

    return await _serve(request, "/consents/{consent_id}", work)


# -- accounts ----------------------------------------------------------------------------------------------------

@router.get("/accounts/{branch_code}/{account_number}/balance", summary="Balance of a consented account (残高照会)",
            responses=_responses(200, BalanceOut, 403, 409))
async def get_balance(request: Request, branch_code: str = BranchPath, account_number: str = NumberPath) -> Response:
    async def work(ch: OpenApiChannel, call: access_log.CallRecord) -> Reply:
        caller = await _caller(ch, call, request, Scope.BALANCE)
        consent = await _consented(ch, call, caller, branch_code, account_number, Scope.BALANCE)
        return Reply(200, await resources.account_balance(ch, consent))

    return await _serve(request, "/accounts/{branch_code}/{account_number}/balance", work)


@router.get("/accounts/{branch_code}/{account_number}/statement",
            summary="Statement of a consented account by period, a page at a time (入出金明細)",
            responses=_responses(200, StatementOut, 403, 409), openapi_extra={"parameters": [
                {"name": "from_date", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}},
                {"name": "to_date", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}},
                {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}}]})
async def get_statement(request: Request, branch_code: str = BranchPath,
                        account_number: str = NumberPath) -> Response:
    async def work(ch: OpenApiChannel, call: access_log.CallRecord) -> Reply:
        caller = await _caller(ch, call, request, Scope.STATEMENT)
        consent = await _consented(ch, call, caller, branch_code, account_number, Scope.STATEMENT)
        query = resources.statement_query(dict(request.query_params))
        return Reply(200, await resources.account_statement(ch, consent, query))

    return await _serve(request, "/accounts/{branch_code}/{account_number}/statement", work)


@router.post("/accounts/{branch_code}/{account_number}/transfers",
             summary="Initiate a transfer from a consented account to an account of this bank (exactly once per"
                     " Idempotency-Key)",
             openapi_extra=_json_body(TransferIn), responses=_responses(201, TransferOut, 403, 409, 422))
async def post_transfer(request: Request, branch_code: str = BranchPath,
                        account_number: str = NumberPath) -> Response:
    async def work(ch: OpenApiChannel, call: access_log.CallRecord) -> Reply:
        caller = await _caller(ch, call, request, Scope.TRANSFER)
        consent = await _consented(ch, call, caller, branch_code, account_number, Scope.TRANSFER)
        key = _idempotency_key(request)
        body = await _json(request, TransferIn)
        answer = await transfers.initiate_transfer(ch, caller, consent, transfers.TransferOrder(
            key, body.to_branch_code, int(body.to_account_number), body.amount_minor))
        replayed = {"Idempotent-Replayed": "true"} if answer.body.get("replayed") else {}
        return Reply(answer.status, answer.body, replayed)

    return await _serve(request, "/accounts/{branch_code}/{account_number}/transfers", work)


@router.get("/accounts/{branch_code}/{account_number}/transfers/{transfer_id}",
            summary="Where a transfer initiated by this client stands", responses=_responses(
                200, TransferOut, 403, 404))
async def get_transfer(transfer_id: str, request: Request, branch_code: str = BranchPath,
                       account_number: str = NumberPath) -> Response:
    async def work(ch: OpenApiChannel, call: access_log.CallRecord) -> Reply:
        caller = await _caller(ch, call, request, Scope.TRANSFER)
        consent = await _consented(ch, call, caller, branch_code, account_number, Scope.TRANSFER)
        return Reply(200, await transfers.transfer_status(ch, caller, consent, _uuid(transfer_id, "transfer_id")))

    return await _serve(request, "/accounts/{branch_code}/{account_number}/transfers/{transfer_id}", work)
