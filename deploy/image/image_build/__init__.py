"""Builds the one anycastlb OCI image (edge, control plane, controller) from Debian packages.

``spec`` says what the image is (pure: packages, user, environment, labels, cache keys); ``steps``
makes it (mmdebstrap, a build chroot for the wheel, umoci, skopeo); ``__main__`` is the command
``deploy/image/build`` runs. docs/image.md explains the choices.
"""
