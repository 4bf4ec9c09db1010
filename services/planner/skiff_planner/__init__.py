"""The planner service: runs trip sagas — route, dispatch, collect, finish — from KV state."""
