"""Moving a function's `live` alias: rollback, A/B splits and the canary bake.

Commands that change which published version answers (and with what weight) and
nothing else: they never publish, build or deploy. scarab.deploy.weights validates every percent
and routing before any call, because emulators (and AWS's API too, for some values)
accept weights that make no sense.
"""
