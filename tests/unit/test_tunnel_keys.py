"""WireGuard keys made with ``cryptography`` (control/tunnels/keys.py), checked against ``wg``."""

import shutil
import subprocess

from anycastlb.control.tunnels.keys import new_keypair, public_key_of
from anycastlb.model.tunnel import check_wireguard_key
from tests.support.peers import absent


def test_keys_are_wireguards_44_character_base64_and_all_different() -> None:
    pairs = [new_keypair() for _ in range(20)]
    for pair in pairs:
        check_wireguard_key(pair.private)
        check_wireguard_key(pair.public)
        assert public_key_of(pair.private) == pair.public
    assert len({pair.private for pair in pairs}) == 20
    assert pairs[0].private not in repr(pairs[0])


def test_wg_derives_the_same_public_key_from_our_private_key() -> None:
    wg = shutil.which("wg")
    if wg is None:
        absent("`wg` is not installed: apt-get install wireguard-tools (scripts/setup installs it)")
    for _ in range(3):
        pair = new_keypair()
        derived = subprocess.run(
            [wg, "pubkey"], input=pair.private + "\n", capture_output=True, text=True, check=True
        ).stdout.strip()
        assert derived == pair.public
    generated = subprocess.run([wg, "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    expected = subprocess.run(
        [wg, "pubkey"], input=generated + "\n", capture_output=True, text=True, check=True
    ).stdout.strip()
    assert public_key_of(generated) == expected
