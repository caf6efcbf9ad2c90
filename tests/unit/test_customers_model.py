"""The customer model without a database: field rules with worked examples, and every status transition."""

from __future__ import annotations

import datetime as dt

import pytest

from kanjo.customers.model import (
    TRANSITIONS,
    Contact,
    Customer,
    CustomerKind,
    CustomerStatus,
    IdentityVerification,
    IdentityVerificationUpdate,
    IllegalTransition,
    InvalidField,
    NewCustomer,
    age_on,
    format_cif_number,
    normalise_address,
    normalise_email,
    normalise_name_kana,
    normalise_name_kanji,
    normalise_phone,
    normalise_postal_code,
    today_in_japan,
)

TODAY = dt.date(2025, 6, 2)
AT = dt.datetime(2025, 6, 2, 1, 0, tzinfo=dt.UTC)
LATER = AT + dt.timedelta(minutes=5)
CONTACT = Contact("03-1234-5678", None, "100-0005", "東京都千代田区丸の内1-1-1")


def individual(**changes: object) -> NewCustomer:
    fields: dict[str, object] = {
        "id": 1, "kind": CustomerKind.INDIVIDUAL, "name_kanji": "山田 太郎", "name_kana": "ﾔﾏﾀﾞ ﾀﾛｳ",
        "contact": CONTACT, "birth_date": dt.date(1980, 4, 1),
    }
    fields.update(changes)
    return NewCustomer(**fields)  # type: ignore[arg-type]


def corporation(**changes: object) -> NewCustomer:
    fields: dict[str, object] = {
        "id": 2, "kind": CustomerKind.CORPORATE, "name_kanji": "株式会社山田商事",
        "name_kana": "カブシキガイシャ　ヤマダショウジ", "contact": CONTACT, "registration_date": dt.date(1950, 1, 10),
    }
    fields.update(changes)
    return NewCustomer(**fields)  # type: ignore[arg-type]


def registered(new: NewCustomer | None = None) -> Customer:
    return Customer.register((new or individual()).validated(TODAY), 42, AT).customer


def refused_field(call: object, *args: object) -> str:
    with pytest.raises(InvalidField) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.field


# -- kana ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "stored"), [
    ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ\u3000タロウ"),  # half-width → full-width, dakuten joined, space → 全角スペース
    ("ヤマダ　タロウ", "ヤマダ\u3000タロウ"),  # already right: unchanged
    ("  ヤマダ 　 タロウ  ", "ヤマダ\u3000タロウ"),  # ends trimmed, a run of spaces becomes one
    ("ｽｽﾞｷ ｲﾁﾛｰ", "スズキ\u3000イチロー"),  # ｰ → ー
    ("ﾊﾟﾝ･ｺｰﾋｰ", "パン・コーヒー"),  # ﾟ joined, ･ → ・
    ("ｳﾞｧｲｵﾘﾝ", "ヴァイオリン"),  # ヴ and small ァ
    ("ジョン・スミス", "ジョン・スミス"),
    ("ア" * 60, "ア" * 60),
])
def test_kana_is_normalised_to_full_width(typed: str, stored: str) -> None:
    assert normalise_name_kana(typed) == stored


@pytest.mark.parametrize(("typed", "reason"), [
    ("やまだ　たろう", "character 1 'や' (hiragana; write it in katakana)"),
    ("ヤマダ　taro", "character 5 't'"),
    ("ＹＡＭＡＤＡ", "character 1 'Y'"),  # full-width Latin becomes ASCII under NFKC, then is refused
    ("カ)ヤマダショウジ", "character 2 ')'"),
    ("山田", "character 1 '山'"),
    ("ヤマダ1", "character 4 '1'"),
    ("ｱﾞ", "character 2 U+3099"),  # a voiced mark on ア, which takes none
    ("", "must not be empty"),
    ("\u3000 ", "must not be empty"),
    ("ア" * 61, "at most 60 characters, got 61"),
])
def test_kana_refuses_anything_else_with_a_reason(typed: str, reason: str) -> None:
    with pytest.raises(InvalidField) as caught:
        normalise_name_kana(typed)
    assert caught.value.field == "name_kana"
    assert reason in caught.value.reason


def test_a_search_prefix_keeps_one_trailing_space() -> None:
    assert normalise_name_kana("ﾔﾏﾀﾞ ", "kana", prefix=True) == "ヤマダ\u3000"
    assert normalise_name_kana("ﾔﾏﾀﾞ", "kana", prefix=True) == "ヤマダ"
    assert normalise_name_kana("ヤマダ", prefix=False) == "ヤマダ"


# -- the other fields ----------------------------------------------------------------------------------


def test_kanji_name() -> None:
    assert normalise_name_kanji("  山田 太郎 ") == "山田 太郎"
    assert normalise_name_kanji("髙橋 一郎") == "髙橋 一郎"
    assert normalise_name_kanji("Smith John") == "Smith John"
    assert normalise_name_kanji("名" * 60) == "名" * 60
    for bad in ("", "   ", "名" * 61, "山田\t太郎", "山田\u200b太郎"):
        assert refused_field(normalise_name_kanji, bad) == "name_kanji", bad
    with pytest.raises(InvalidField, match="外字"):
        normalise_name_kanji("山\ue000太郎")  # a private-use code point: a bank's own gaiji


@pytest.mark.parametrize(("typed", "stored"), [
    ("03-1234-5678", "03-1234-5678"),
    ("0312345678", "0312345678"),
    ("090-1234-5678", "090-1234-5678"),
    ("０９０－１２３４－５６７８", "090-1234-5678"),  # full-width digits and hyphens
    (" 0120-123-456 ", "0120-123-456"),
])
def test_phone(typed: str, stored: str) -> None:
    assert normalise_phone(typed) == stored


@pytest.mark.parametrize("bad", ["031234567", "090123456789", "+81-90-1234-5678", "90-1234-5678", "03--1234-5678",
                                 "-0312345678", "03 1234 5678", "03-1234-567a", ""])
def test_phone_refused(bad: str) -> None:
    assert refused_field(normalise_phone, bad) == "phone"


def test_email() -> None:
    assert normalise_email(None) is None
    assert normalise_email("  ") is None
    assert normalise_email(" taro.yamada@example.jp ") == "taro.yamada@example.jp"
    for bad in ("taro", "taro@", "@example.jp", "taro@example", "ta ro@example.jp", "a@b@c.jp", "太郎@example.jp",
                "a@example.", "x" * 250 + "@a.jp", "ta\x00ro@example.jp"):
        assert refused_field(normalise_email, bad) == "email", bad


def test_postal_code() -> None:
    assert normalise_postal_code("100-0005") == "100-0005"
    assert normalise_postal_code("1000005") == "100-0005"
    assert normalise_postal_code("１００－０００５") == "100-0005"
    for bad in ("100-000", "1000-005", "〒100-0005", "100 0005", "abc-defg", ""):
        assert refused_field(normalise_postal_code, bad) == "postal_code", bad


def test_address() -> None:
    assert normalise_address(" 大阪府大阪市北区梅田1-1 ") == "大阪府大阪市北区梅田1-1"
    assert normalise_address("あ" * 200) == "あ" * 200
    assert refused_field(normalise_address, "あ" * 201) == "address"
    assert refused_field(normalise_address, "") == "address"


def test_cif_number_is_shown_as_ten_digits() -> None:
    assert format_cif_number(42) == "0000000042"
    assert format_cif_number(9_999_999_999) == "9999999999"
    assert registered().cif_text == "0000000042"


def test_age_counts_full_years_and_leap_day_births() -> None:
    assert age_on(dt.date(1980, 4, 1), dt.date(2025, 3, 31)) == 44
    assert age_on(dt.date(1980, 4, 1), dt.date(2025, 4, 1)) == 45
    assert age_on(dt.date(2004, 2, 29), dt.date(2025, 2, 28)) == 20
    assert age_on(dt.date(2004, 2, 29), dt.date(2025, 3, 1)) == 21


def test_today_is_the_day_in_japan() -> None:
    assert today_in_japan(dt.datetime(2025, 6, 1, 14, 59, tzinfo=dt.UTC)) == dt.date(2025, 6, 1)
    assert today_in_japan(dt.datetime(2025, 6, 1, 15, 0, tzinfo=dt.UTC)) == dt.date(2025, 6, 2)


# -- registration --------------------------------------------------------------------------------------


def test_registration_normalises_every_field() -> None:
    new = individual(contact=Contact("０３１２３４５６７８", "  ", "1000005", " 東京都 ")).validated(TODAY)
    assert new.name_kana == "ヤマダ\u3000タロウ"
    assert new.contact == Contact("0312345678", None, "100-0005", "東京都")
    change = Customer.register(new, 1, AT)
    c = change.customer
    assert (c.status, c.identity_verification, c.version, c.created_at, c.updated_at) == (
        CustomerStatus.ACTIVE, IdentityVerification.UNVERIFIED, 1, AT, AT)
    assert change.event.kind == "registered"
    assert change.event.details == {"cif_number": "0000000001", "kind": "individual"}


@pytest.mark.parametrize(("changes", "field"), [
    ({"birth_date": None}, "birth_date"),
    ({"birth_date": TODAY}, "birth_date"),  # must be in the past
    ({"birth_date": dt.date(2030, 1, 1)}, "birth_date"),
    ({"birth_date": dt.date(1894, 6, 2)}, "birth_date"),  # 131 today
    ({"registration_date": dt.date(2000, 1, 1)}, "registration_date"),  # individuals have none
    ({"name_kana": "やまだ"}, "name_kana"),
    ({"name_kanji": ""}, "name_kanji"),
    ({"contact": Contact("12345", None, "100-0005", "東京都")}, "phone"),
    ({"contact": Contact("0312345678", "nope", "100-0005", "東京都")}, "email"),
    ({"contact": Contact("0312345678", None, "100", "東京都")}, "postal_code"),
    ({"contact": Contact("0312345678", None, "100-0005", "")}, "address"),
    ({"id": 0}, "id"),
    ({"id": (1 << 128) - 1}, "id"),
])
def test_individual_registration_refused(changes: dict[str, object], field: str) -> None:
    assert refused_field(individual(**changes).validated, TODAY) == field


def test_age_limit_is_inclusive() -> None:
    oldest = dt.date(1894, 6, 3)  # 130 today, 131 tomorrow
    assert individual(birth_date=oldest).validated(TODAY).birth_date == oldest
    assert individual(birth_date=dt.date(2025, 6, 1)).validated(TODAY)  # born yesterday


@pytest.mark.parametrize(("changes", "field"), [
    ({"registration_date": None}, "registration_date"),
    ({"registration_date": dt.date(2025, 6, 3)}, "registration_date"),  # in the future
    ({"birth_date": dt.date(1980, 1, 1)}, "birth_date"),  # corporations have none
])
def test_corporate_registration_refused(changes: dict[str, object], field: str) -> None:
    assert refused_field(corporation(**changes).validated, TODAY) == field


def test_corporation_registered_today() -> None:
    assert corporation(registration_date=TODAY).validated(TODAY).kind is CustomerKind.CORPORATE


# -- status transitions --------------------------------------------------------------------------------


def test_transition_table() -> None:
    table = {t.name: ({s.value for s in t.sources}, t.target.value) for t in TRANSITIONS}
    assert table == {
        "freeze": ({"active"}, "frozen"),
        "unfreeze": ({"frozen"}, "active"),
        "record_death": ({"active", "frozen"}, "deceased"),
    }


def test_freeze_and_unfreeze() -> None:
    active = registered()
    frozen = active.freeze("差押命令 (garnishment order) 令和7年(ル)第123号", LATER)
    assert frozen.customer.status is CustomerStatus.FROZEN
    assert frozen.customer.status_reason == "差押命令 (garnishment order) 令和7年(ル)第123号"
    assert (frozen.customer.version, frozen.customer.updated_at) == (2, LATER)
    assert frozen.event.kind == "frozen"
    assert frozen.event.details == {"from": "active", "to": "frozen", "reason": frozen.customer.status_reason}
    thawed = frozen.customer.unfreeze("差押解除", LATER)
    assert thawed.customer.status is CustomerStatus.ACTIVE
    assert thawed.customer.version == 3
    assert thawed.event.details == {"from": "frozen", "to": "active", "reason": "差押解除"}
    assert active.status is CustomerStatus.ACTIVE  # immutable: the old value is untouched


@pytest.mark.parametrize("from_frozen", [False, True])
def test_record_death_from_active_or_frozen_is_final(from_frozen: bool) -> None:
    customer = registered()
    if from_frozen:
        customer = customer.freeze("本人申出", LATER).customer
    change = customer.record_death(dt.date(2025, 5, 30), "親族からの届出", LATER, TODAY)
    dead = change.customer
    assert (dead.status, dead.died_on) == (CustomerStatus.DECEASED, dt.date(2025, 5, 30))
    assert change.event.kind == "death_recorded"
    assert change.event.details["died_on"] == "2025-05-30"
    for transition, call in [
        ("freeze", lambda: dead.freeze("x", LATER)),
        ("unfreeze", lambda: dead.unfreeze("x", LATER)),
        ("record_death", lambda: dead.record_death(dt.date(2025, 5, 30), "x", LATER, TODAY)),
    ]:
        with pytest.raises(IllegalTransition) as caught:
            call()
        assert (caught.value.transition, caught.value.status) == (transition, "deceased")
        assert f"cannot {transition} customer 0000000042: it is deceased" in str(caught.value)


def test_illegal_transitions_name_the_transition_and_the_state() -> None:
    active = registered()
    with pytest.raises(IllegalTransition, match=r"cannot unfreeze customer 0000000042: it is active "
                                                r"\(unfreeze is allowed only from frozen\)"):
        active.unfreeze("x", LATER)
    frozen = active.freeze("x", LATER).customer
    with pytest.raises(IllegalTransition, match=r"cannot freeze customer 0000000042: it is frozen "
                                                r"\(freeze is allowed only from active\)") as caught:
        frozen.freeze("x", LATER)
    assert (caught.value.transition, caught.value.status) == ("freeze", "frozen")


def test_a_corporation_is_not_recorded_as_deceased() -> None:
    corp = registered(corporation())
    with pytest.raises(IllegalTransition, match="corporation"):
        corp.record_death(dt.date(2025, 5, 1), "x", LATER, TODAY)


def test_record_death_checks_its_date_and_reason() -> None:
    customer = registered()
    with pytest.raises(InvalidField, match="died_on: must not be in the future"):
        customer.record_death(dt.date(2025, 6, 3), "x", LATER, TODAY)
    with pytest.raises(InvalidField, match="died_on: must not be before the birth_date 1980-04-01"):
        customer.record_death(dt.date(1980, 3, 31), "x", LATER, TODAY)
    assert refused_field(customer.freeze, "", LATER) == "reason"
    assert refused_field(customer.freeze, "x" * 201, LATER) == "reason"


# -- contact and identity verification -----------------------------------------------------------------


def test_update_contact_records_what_changed() -> None:
    customer = registered()
    change = customer.update_contact(Contact("090-1111-2222", "taro@example.jp", "100-0005", CONTACT.address), LATER)
    assert change.customer.contact == Contact("090-1111-2222", "taro@example.jp", "100-0005", CONTACT.address)
    assert change.customer.version == 2
    assert change.event.details == {"phone": {"from": "03-1234-5678", "to": "090-1111-2222"},
                                    "email": {"from": None, "to": "taro@example.jp"}}
    assert refused_field(customer.update_contact, Contact("1", None, "100-0005", "x"), LATER) == "phone"


def test_contact_may_change_in_every_status() -> None:
    dead = registered().record_death(dt.date(2025, 5, 30), "届出", LATER, TODAY).customer
    heirs = Contact("06-1234-5678", None, "530-0001", "大阪府大阪市北区梅田1-1 (相続人 山田花子 様方)")
    assert dead.update_contact(heirs, LATER).customer.contact == heirs


def test_identity_verification() -> None:
    customer = registered()
    verified = customer.record_identity_verification(
        IdentityVerificationUpdate(IdentityVerification.VERIFIED, dt.date(2025, 6, 1)), LATER, TODAY)
    assert verified.customer.identity_verification is IdentityVerification.VERIFIED
    assert verified.customer.identity_verified_on == dt.date(2025, 6, 1)
    assert verified.event.details == {"from": "unverified", "to": "verified", "verified_on": "2025-06-01"}
    expired = verified.customer.record_identity_verification(
        IdentityVerificationUpdate(IdentityVerification.EXPIRED), LATER, TODAY).customer
    assert (expired.identity_verification, expired.identity_verified_on) == (
        IdentityVerification.EXPIRED, dt.date(2025, 6, 1))  # when it was last verified
    reset = expired.record_identity_verification(
        IdentityVerificationUpdate(IdentityVerification.UNVERIFIED), LATER, TODAY).customer
    assert (reset.identity_verification, reset.identity_verified_on) == (IdentityVerification.UNVERIFIED, None)


def test_identity_verification_refusals() -> None:
    customer = registered()
    with pytest.raises(IllegalTransition, match="its identity verification is unverified") as caught:
        customer.record_identity_verification(IdentityVerificationUpdate(IdentityVerification.EXPIRED), LATER, TODAY)
    assert caught.value.status == "unverified"
    verified = IdentityVerificationUpdate(IdentityVerification.VERIFIED, dt.date(2025, 6, 1))
    for update in (IdentityVerificationUpdate(IdentityVerification.VERIFIED),
                   IdentityVerificationUpdate(IdentityVerification.VERIFIED, dt.date(2025, 6, 3)),
                   IdentityVerificationUpdate(IdentityVerification.UNVERIFIED, dt.date(2025, 6, 1))):
        assert refused_field(customer.record_identity_verification, update, LATER, TODAY) == "verified_on"
    dead = customer.record_death(dt.date(2025, 5, 30), "届出", LATER, TODAY).customer
    with pytest.raises(IllegalTransition, match="it is deceased"):
        dead.record_identity_verification(verified, LATER, TODAY)
