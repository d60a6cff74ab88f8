"""SAE / SUSAR reporting clocks (docs/rules.md, "Safety")."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from pgf_events.domain.rules.safety import as_utc, is_susar, sae_clocks
from pgf_events.protocol import Protocol

P = Protocol()
AWARE = datetime(2025, 5, 10, 14, 30, tzinfo=UTC)


def test_sponsor_is_due_24_hours_after_awareness():
    c = sae_clocks(AWARE, P, seriousness={"hospitalisation"}, relatedness="unlikely")
    assert c.sponsor.due == datetime(2025, 5, 11, 14, 30, tzinfo=UTC)
    assert (c.serious, c.susar, c.regulator) == (True, False, None)


def test_non_serious_event_starts_no_clock():
    c = sae_clocks(AWARE, P, seriousness=(), relatedness="definite")
    assert (c.serious, c.sponsor, c.regulator, c.regulator_complete) == (False, None, None, None)


def test_fatal_susar_is_due_to_the_regulator_in_7_days_and_complete_in_15():
    c = sae_clocks(AWARE, P, seriousness={"death"}, relatedness="possible")
    assert c.susar and c.fatal_or_life_threatening
    assert c.regulator.due == AWARE + timedelta(days=7)        # May 17 14:30
    assert c.regulator_complete.due == AWARE + timedelta(days=15)  # 7 + 8 days: May 25 14:30


def test_life_threatening_susar_uses_the_short_clock():
    c = sae_clocks(AWARE, P, seriousness={"life-threatening", "hospitalisation"}, relatedness="probable")
    assert c.regulator.due == AWARE + timedelta(days=7)


def test_other_susar_is_due_in_15_days_without_a_follow_up_clock():
    c = sae_clocks(AWARE, P, seriousness={"hospitalisation"}, relatedness="definite")
    assert c.regulator.due == AWARE + timedelta(days=15)
    assert c.regulator_complete is None


def test_expected_reaction_is_not_a_susar():
    assert not is_susar({"death"}, "definite", expected=True)


@pytest.mark.parametrize("related", ["not", "unlikely", None])
def test_unrelated_event_is_not_a_susar(related):
    assert not is_susar({"death"}, related)


def test_report_on_the_due_time_meets_the_clock():
    c = sae_clocks(AWARE, P, seriousness={"hospitalisation"}, sponsor_reported=AWARE + timedelta(hours=24))
    assert c.sponsor.met is True


def test_report_after_the_due_time_misses_the_clock():
    c = sae_clocks(AWARE, P, seriousness={"hospitalisation"},
                   sponsor_reported=AWARE + timedelta(hours=24, minutes=1))
    assert c.sponsor.met is False


def test_unreported_clock_is_pending_before_and_missed_after_due():
    before = sae_clocks(AWARE, P, seriousness={"disability"}, as_of=AWARE + timedelta(hours=23))
    after = sae_clocks(AWARE, P, seriousness={"disability"}, as_of=AWARE + timedelta(hours=25))
    assert (before.sponsor.met, after.sponsor.met) == (None, False)


def test_date_only_awareness_starts_at_midnight_utc():
    c = sae_clocks(date(2025, 5, 10), P, seriousness={"hospitalisation"})
    assert c.sponsor.due == datetime(2025, 5, 11, 0, 0, tzinfo=UTC)


def test_naive_times_are_utc_and_offsets_are_converted():
    assert as_utc(datetime(2025, 5, 10, 12)) == datetime(2025, 5, 10, 12, tzinfo=UTC)
    paris = timezone(timedelta(hours=2))
    assert as_utc(datetime(2025, 5, 10, 12, tzinfo=paris)) == datetime(2025, 5, 10, 10, tzinfo=UTC)


def test_clock_lengths_come_from_the_protocol():
    c = sae_clocks(AWARE, Protocol(sae_sponsor_hours=48), seriousness={"hospitalisation"})
    assert c.sponsor.due == AWARE + timedelta(hours=48)


def test_unknown_seriousness_criterion_is_rejected():
    with pytest.raises(ValueError, match="unknown seriousness criterion"):
        sae_clocks(AWARE, P, seriousness={"severe"})


def test_unknown_relatedness_is_rejected():
    with pytest.raises(ValueError, match="unknown relatedness"):
        sae_clocks(AWARE, P, seriousness={"death"}, relatedness="maybe")
