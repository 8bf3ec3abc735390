"""Tests of the relief-measure engine, the huangpu-2020 pack and its CLI."""
