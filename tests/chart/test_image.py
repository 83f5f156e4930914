"""The container image the chart runs (the Dockerfile cannot be built here: no Docker engine), read
as text and held to what the chart assumes of it."""

from __future__ import annotations

from conftest import REPO, render


def stages() -> list[str]:
    """The Dockerfile's stages, each from its FROM line on, without comments."""
    found: list[list[str]] = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line.removeprefix("FROM "))
    return ["\n".join(stage) for stage in found]


def test_the_image_is_built_with_the_locked_dependencies_and_runs_distroless_as_nonroot():
    builder, final = stages()[0], stages()[-1]
    assert builder.startswith("rust:1-bookworm")
    assert "cargo build --release --locked --bin podgrace" in builder
    # Static (musl): the preStop helper copies this binary into application images of any libc.
    assert "linux-musl" in builder and "musl-tools" in builder
    assert final.startswith("gcr.io/distroless/static-debian12:nonroot")
    assert "/podgrace" in final and "COPY --from=" in final
    assert "USER 65532:65532" in final
    assert 'ENTRYPOINT ["/podgrace"]' in final
    assert 'CMD ["serve"]' in final
    assert "EXPOSE 8443" in final


def test_the_image_user_and_port_are_the_ones_the_pods_expect():
    r = render()
    sc = r.pod["spec"]["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (65532, 65532)
    assert r.container["ports"][0]["containerPort"] == 8443
    # The chart passes only the subcommand: the image's ENTRYPOINT is the binary.
    assert r.container["args"] == ["serve"] and "command" not in r.container


def test_the_build_context_leaves_out_build_output_and_secrets():
    ignored = (REPO / ".dockerignore").read_text().split()
    for pattern in ("target", ".venv", ".git", "certs/*.pem", "certs/*.key", "certs/*.crt"):
        assert pattern in ignored or f"/{pattern}" in ignored, pattern
