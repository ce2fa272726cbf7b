"""`kubezt rbac`: the least-privilege ClusterRole that reading a cluster needs."""

from __future__ import annotations

from typing import Annotated

import typer

from kubezt.cli.common import Output, OutputOpt, emit


def rbac_command(
    name: Annotated[
        str, typer.Option(metavar="NAME", help="metadata.name of the ClusterRole.")
    ] = "kubezt-reader",
    output: OutputOpt = Output.YAML,
) -> None:
    """Print the ClusterRole kubezt needs to read a cluster (--cluster/--context): get, list
    and watch on exactly the kinds it analyses, and get on the Istio mesh ConfigMap. Bind it
    to the user or ServiceAccount that runs kubezt:

    kubezt rbac | kubectl apply -f -

    kubectl create clusterrolebinding kubezt-reader --clusterrole kubezt-reader --user ME"""
    from kubezt.live.rbac import reader_cluster_role

    role = reader_cluster_role(name)
    emit(role, Output.JSON if output is Output.JSON else Output.YAML)
