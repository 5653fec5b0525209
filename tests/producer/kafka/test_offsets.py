"""Commit points: only offsets whose verdicts were acknowledged, contiguously per partition."""

from __future__ import annotations

from datasentinel.producer.kafka.offsets import OffsetTracker

TP = ("events", 0)


def tracker_with(*offsets: int) -> OffsetTracker:
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.read(TP, offset)
    return tracker


def test_nothing_to_commit_until_the_first_offset_is_done():
    tracker = tracker_with(10, 11, 12)
    tracker.done(TP, 11)
    tracker.done(TP, 12)
    assert tracker.commit_point(TP) is None and tracker.to_commit() == {}


def test_the_commit_point_is_one_past_the_last_done_in_a_row():
    tracker = tracker_with(10, 11, 12, 13)
    for offset in (10, 12, 11):
        tracker.done(TP, offset)
    assert tracker.commit_point(TP) == 13
    assert tracker.pending == 1


def test_gaps_in_offsets_are_no_obstacle():
    tracker = tracker_with(5, 9, 20)  # compacted topics, transaction markers
    for offset in (5, 9, 20):
        tracker.done(TP, offset)
    assert tracker.commit_point(TP) == 21 and tracker.pending == 0


def test_to_commit_names_only_points_that_moved_and_failed_commits_move_again():
    tracker = tracker_with(0, 1)
    tracker.done(TP, 0)
    points = tracker.to_commit()
    assert points == {TP: 1}
    tracker.committed(points)
    assert tracker.to_commit() == {}
    tracker.not_committed([TP])
    assert tracker.to_commit() == {TP: 1}
    assert tracker.commit_points() == {TP: 1}


def test_partitions_are_independent_and_forgotten_ones_ignore_late_answers():
    tracker = tracker_with(0)
    other = ("events", 1)
    tracker.read(other, 7)
    tracker.done(other, 7)
    assert tracker.to_commit() == {other: 8}
    tracker.forget([TP])
    tracker.done(TP, 0)  # an answer for a revoked partition: nothing to commit there
    assert tracker.commit_point(TP) is None and tracker.pending == 0
