"""The loop-lag saturation signal with an injected clock."""

from fastds.dispatch.overload import LoopLag


def test_a_late_tick_saturates_and_a_timely_one_under_half_the_threshold_recovers():
    lag = LoopLag(0.25)
    assert lag.tick(1.0, 1.01) is None and not lag.saturated  # 10 ms late: fine
    assert lag.tick(2.0, 2.3) is True and lag.saturated       # 300 ms late: saturated
    assert lag.tick(3.0, 3.2) is None and lag.saturated       # 200 ms: not yet under half
    assert lag.tick(4.0, 4.1) is False and not lag.saturated  # 100 ms: recovered
    assert lag.tick(5.0, 4.99) is None and lag.last_lag_s == 0.0  # an early tick is no lag
