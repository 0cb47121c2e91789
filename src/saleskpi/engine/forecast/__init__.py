"""Forecasting from the company's own history (docs: forecast.md).

``history`` reads deals, stage entries and the reps' forecasts (SQL, bound values);
``learn`` turns histories into aggregates and shrunk probabilities; ``simulate``
runs the Monte Carlo; ``backtest`` replays past periods with what was known then.
"""
