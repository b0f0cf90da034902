"""Serving and scaling: an HTTP inference service with replicas and dynamic batching, an open-loop load
generator, service curves, a capacity and cost planner, and the same predictor on Ray Serve and Ray Data."""
