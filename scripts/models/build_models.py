#!/usr/bin/env python3
"""Builds the example and test ONNX models deterministically (fixed seeds, fixed opset).

    pip install onnx==1.17.0 numpy && python3 scripts/models/build_models.py

Writes models/<name>/<version>/model.onnx. The bytes are reproducible: the same script
gives the same sha256, which test/unit/models checks against the committed files.

shop-propensity: a purchase-propensity scorer for the e-commerce example. Input `features`
float32 [N, 8] (see examples/shop/pipeline.yaml for the mapping from event fields), an MLP
8 -> 32 -> 16 -> 1 with ReLU and a sigmoid, output `propensity` float32 [N, 1]. Weights are
hand-shaped so cart/purchase and higher quantities score higher, plus seeded noise.
Version 2 has different weights (a "retrained" model): same input, different outputs.
Version 3 also reads 5 online features from the Redis store (float32 [N, 13]); its
mapping is in models/shop-propensity/3/model.yaml.

test-gather: a model that fails at run time on some inputs: `idx` int64 [N, 1] indexes a
4-row table with Gather; an index outside [-4, 3] makes onnxruntime throw. Used to prove
that one record's model error goes to the DLQ without failing its batch.

bench-mlp: a larger MLP (64 -> 1024 -> 1024 -> 1) where inference dominates, for load-tests.
"""
import os
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OPSET = [helper.make_opsetid("", 17)]


def save(model, name, version):
    onnx.checker.check_model(model)
    out = os.path.join(ROOT, "models", name, str(version))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "model.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))
    print(path)


def mlp(name, doc, layer_weights, in_name, in_dim, out_name, final_sigmoid):
    nodes, inits = [], []
    cur = in_name
    for i, (w, b) in enumerate(layer_weights):
        wn, bn, mm, add = f"W{i}", f"B{i}", f"mm{i}", f"add{i}"
        inits += [numpy_helper.from_array(w.astype(np.float32), wn),
                  numpy_helper.from_array(b.astype(np.float32), bn)]
        nodes += [helper.make_node("MatMul", [cur, wn], [mm]), helper.make_node("Add", [mm, bn], [add])]
        last = i == len(layer_weights) - 1
        if not last:
            nodes.append(helper.make_node("Relu", [add], [f"h{i}"]))
            cur = f"h{i}"
        else:
            nodes.append(helper.make_node("Sigmoid" if final_sigmoid else "Identity", [add], [out_name]))
    out_dim = layer_weights[-1][0].shape[1]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, ["batch", in_dim])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", out_dim])],
        inits)
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="aimass-build-models",
                              producer_version="1", doc_string=doc)
    model.ir_version = 8
    return model


def shop_weights(seed, cart_boost, purchase_boost):
    rng = np.random.default_rng(seed)
    # Feature order: log1p(price), log1p(quantity), view, cart, purchase, sin(hour), cos(hour), 1.
    # Hand-shaped so the score is readable: purchases > carts > views, more quantity scores
    # higher, expensive items lower; seeded noise makes each version its own model.
    w0 = rng.normal(0, 0.05, (8, 32))
    w0[1, :8] += 0.5                 # units 0-7: quantity
    w0[3, 8:16] += cart_boost        # units 8-15: cart events
    w0[4, 16:24] += purchase_boost   # units 16-23: purchases
    w0[0, 24:] += 0.25               # units 24-31: price (subtracted below)
    w0[7, :] += 0.05                 # keep units alive (ReLU) for the noise to matter
    b0 = np.zeros(32)
    w1 = np.abs(rng.normal(0, 0.05, (32, 16)))
    w1[:24, :] += 0.1
    w1[24:, :] = -np.abs(w1[24:, :]) - 0.1
    b1 = np.full(16, 0.2)
    w2 = np.abs(rng.normal(0.2, 0.03, (16, 1)))
    b2 = np.array([-2.0])
    return [(w0, b0), (w1, b1), (w2, b2)]


def shop_weights_with_features(seed):
    """Version 3: the 8 event columns plus 5 online features, appended in this order:
    log1p(user.clicks_7d), log1p(user.carts_7d), log1p(user.purchases_30d),
    item.popularity_7d (0..1), item.price_band (0..4). Engaged users and popular items
    score higher; pricier bands lower."""
    (w0, b0), (w1, b1), (w2, b2) = shop_weights(seed, 0.3, 0.5)
    rng = np.random.default_rng(seed + 100)
    extra = rng.normal(0, 0.03, (5, 32))
    extra[0, :8] += 0.15     # clicks feed the engagement units
    extra[1, 8:16] += 0.3    # carts feed the cart units
    extra[2, 16:24] += 0.5   # past purchases feed the purchase units
    extra[3, :24] += 0.4     # popular items lift every positive unit
    extra[4, 24:] += 0.15    # higher price bands feed the negative units
    return [(np.vstack([w0, extra]), b0), (w1, b1), (w2, b2)]


def build_shop():
    for version, (seed, cart, purchase) in {1: (1, 0.25, 0.45), 2: (2, 0.35, 0.6)}.items():
        save(mlp("shop_propensity", f"shop purchase propensity v{version}", shop_weights(seed, cart, purchase),
                 "features", 8, "propensity", True), "shop-propensity", version)
    save(mlp("shop_propensity", "shop purchase propensity v3 (event + online features)",
             shop_weights_with_features(3), "features", 13, "propensity", True), "shop-propensity", 3)


def build_gather():
    table = numpy_helper.from_array(np.array([[0.1], [0.2], [0.3], [0.4]], dtype=np.float32), "table")
    squeeze_axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    nodes = [helper.make_node("Squeeze", ["idx", "axes"], ["flat"]),
             helper.make_node("Gather", ["table", "flat"], ["score"], axis=0)]
    graph = helper.make_graph(
        nodes, "test_gather",
        [helper.make_tensor_value_info("idx", TensorProto.INT64, ["batch", 1])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        [table, squeeze_axes])
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="aimass-build-models", producer_version="1")
    model.ir_version = 8
    save(model, "test-gather", 1)


def build_bench():
    rng = np.random.default_rng(7)
    layers = [(rng.normal(0, 0.05, (64, 1024)), np.zeros(1024)),
              (rng.normal(0, 0.03, (1024, 1024)), np.zeros(1024)),
              (rng.normal(0, 0.03, (1024, 1)), np.zeros(1))]
    save(mlp("bench_mlp", "benchmark MLP 64-1024-1024-1", layers, "x", 64, "y", True), "bench-mlp", 1)


if __name__ == "__main__":
    build_shop()
    build_gather()
    build_bench()
