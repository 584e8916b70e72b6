"""Peers files: the bundled anchors, `{data_dir}` expansion, and malformed files refused."""

from __future__ import annotations

import pytest

from clipshoe_pipeline.evaluation.peers import ANCHORS, Peer, read_peers
from clipshoe_pipeline.paths import DataPaths


def test_the_anchors_name_every_published_fashion_clip_with_its_source(tmp_path):
    peers = read_peers(ANCHORS, DataPaths(tmp_path))
    assert {peer.name for peer in peers} == {"Marqo-FashionCLIP", "Marqo-FashionSigLIP", "FashionCLIP",
                                             "OpenFashionCLIP"}
    by_name = {peer.name: peer for peer in peers}
    assert by_name["FashionCLIP"].model == f"local-dir:{tmp_path.absolute()}/models/fashion-clip"
    assert by_name["OpenFashionCLIP"] == Peer("OpenFashionCLIP", "ViT-B-32",
                                              f"{tmp_path.absolute()}/models/openfashionclip/finetuned_clip.pt")


@pytest.mark.parametrize("text, message", [
    ('[[peer]]\nname = "x"\n', "needs name and model"),
    ('[[peer]]\nname = "x"\nmodel = "y"\nweights = "z"\n', "needs name and model"),
    ("[[peer]\n", "peers file"),
])
def test_a_malformed_peers_file_is_refused_with_where(tmp_path, text, message):
    path = tmp_path / "peers.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_peers(str(path), DataPaths(tmp_path))
    with pytest.raises(ValueError, match="peers file"):
        read_peers(str(tmp_path / "absent.toml"), DataPaths(tmp_path))
