{{/*
podgrace's alerting rules: the one source of the PrometheusRule (prometheusrule.yaml) and of the
plain rules file deploy/prometheus/podgrace-rules.yaml (rendered from this with the default
values by `make prometheus-rules`; a test keeps them equal). Runbooks: docs/OPERATIONS.md, one
section per alert. Tests: deploy/prometheus/podgrace-rules.test.yaml (promtool test rules).

Where the metrics come from:
- podgrace_*: podgrace's /metrics (its latency buckets reach the webhook's longest timeout, 30 s,
  so PodgraceAdmissionNearTimeout reads podgrace's own time as well as the API server's);
- apiserver_admission_webhook_*: the API server's /metrics (kube-prometheus-stack scrapes it),
  the only view of calls that never reached podgrace;
- kube_pod_status_ready: kube-state-metrics.

podgrace's metric `podgrace_policy_errors_total` has a `namespace` label (the policy's namespace).
A scrape that attaches its own `namespace` target label (the Prometheus Operator, the usual
kubernetes_sd relabelings) renames it `exported_namespace`; the rules read either.
*/}}

{{/* A Prometheus template reference to an alert label: {{ $labels.NAME }}. */}}
{{- define "podgrace.promLabel" -}}
{{ printf "{{ $labels.%s }}" . }}
{{- end }}

{{/* The alerts, as YAML (a list of rules), before the values' filters and labels. */}}
{{- define "podgrace.alertRules" -}}
{{- $timeout := int .Values.webhook.timeoutSeconds }}
{{- $blocking := eq .Values.webhook.failurePolicy "Fail" }}
{{- $ns := .Release.Namespace }}
{{- $pods := printf "%s-[a-z0-9]+-[a-z0-9]+" (include "podgrace.fullname" .) }}
- alert: PodgraceAdmissionErrors
  expr: |
    sum by (job, namespace) (
        rate(podgrace_admission_requests_total{endpoint="mutate", outcome=~"error|bad_request"}[5m])
      or
        rate(podgrace_requests_refused_total[5m])
    )
    /
    sum by (job, namespace) (
        rate(podgrace_admission_requests_total{endpoint="mutate"}[5m])
      or
        rate(podgrace_requests_refused_total[5m])
    )
    > 0.05
  for: 10m
  labels:
    severity: warning
  annotations:
    summary: "podgrace admits pods without its changes because of its own errors"
    description: "{{ printf "{{ $value | humanizePercentage }}" }} of the pod admissions podgrace answered in the last 5 minutes were internal errors, unreadable reviews or refused bodies: those pods were admitted without preStop hooks or grace period."
- alert: PodgraceWebhookCallsFailing
  expr: |
    sum by (name) (
        rate(apiserver_admission_webhook_fail_open_count{name=~"pods.podgrace.io|policies.podgrace.io"}[5m])
      or
        rate(apiserver_admission_webhook_rejection_count{name=~"pods.podgrace.io|policies.podgrace.io", error_type="calling_webhook_error"}[5m])
    )
    > 0
  for: 10m
  labels:
    severity: {{ if $blocking }}critical{{ else }}warning{{ end }}
  annotations:
    summary: "The API server cannot call podgrace's webhook {{ include "podgrace.promLabel" "name" }}"
    description: "Calls from the API server to {{ include "podgrace.promLabel" "name" }} fail (connection, TLS or timeout): {{ if $blocking }}with failurePolicy Fail, pod creation in opted-in namespaces is failing{{ else }}with failurePolicy Ignore, pods are admitted without podgrace's changes{{ end }}."
- alert: PodgraceAdmissionLatencyHigh
  expr: |
    histogram_quantile(0.99, sum by (job, namespace, le) (rate(podgrace_admission_duration_seconds_bucket{endpoint="mutate"}[5m])))
    > {{ if ge $timeout 2 }}1{{ else }}0.5{{ end }}
  for: 10m
  labels:
    severity: warning
  annotations:
    summary: "podgrace is slow to answer pod admissions"
    description: "The 99th percentile of podgrace's own admission time is {{ printf "{{ $value | humanizeDuration }}" }} (it is normally well under a millisecond); the API server gives up after {{ $timeout }}s."
- alert: PodgraceAdmissionNearTimeout
  expr: |
    (
      histogram_quantile(0.99, sum by (job, namespace, le) (rate(podgrace_admission_duration_seconds_bucket{endpoint="mutate"}[5m])))
      > 0.8 * {{ $timeout }}
    )
    or
    (
      histogram_quantile(0.99, sum by (name, le) (rate(apiserver_admission_webhook_admission_duration_seconds_bucket{name="pods.podgrace.io", type="admit"}[5m])))
      > 0.8 * {{ $timeout }}
    )
  for: 5m
  labels:
    severity: {{ if $blocking }}critical{{ else }}warning{{ end }}
  annotations:
    summary: "Calls to podgrace are close to the webhook timeout"
    description: "{{ printf "{{ if $labels.name }}The API server's 99th percentile for calls to {{ $labels.name }}{{ else }}The 99th percentile of podgrace's own pod admission time ({{ $labels.job }}){{ end }} is {{ $value | humanizeDuration }}" }}, near the webhook's timeout of {{ $timeout }}s: {{ if $blocking }}pod creations that time out fail{{ else }}pods whose call times out are admitted without podgrace's changes{{ end }}."
- alert: PodgraceCertificateExpiringSoon
  expr: |
    min by (job, namespace) (podgrace_certificate_expiry_timestamp_seconds > 0) - time()
    < 7 * 24 * 3600
  for: 15m
  labels:
    severity: warning
  annotations:
    summary: "podgrace's serving certificate expires within 7 days"
    description: "The certificate podgrace serves expires in {{ printf "{{ $value | humanizeDuration }}" }}. Once it has, the API server cannot call the webhook."
- alert: PodgracePolicyRefused
  expr: |
    max by (namespace) (
      label_replace(
          (increase(podgrace_policy_errors_total[1h]) > 0)
        or
          (podgrace_policy_errors_total unless podgrace_policy_errors_total offset 1h),
        "namespace", "$1", "exported_namespace", "(.+)"
      )
    )
  for: 1m
  labels:
    severity: warning
  annotations:
    summary: "podgrace refused the policy of namespace {{ include "podgrace.promLabel" "namespace" }}"
    description: "podgrace refused a policy for namespace {{ include "podgrace.promLabel" "namespace" }} in the last hour (\"cluster\" is the cluster default policy); the namespace keeps its last accepted policy. kubectl describe configmap {{ .Values.policyConfigMapName }} -n {{ include "podgrace.promLabel" "namespace" }} shows why."
- alert: PodgraceNoAdmissions
  expr: |
    (sum(rate(apiserver_admission_webhook_admission_duration_seconds_count{name="pods.podgrace.io", type="admit"}[10m])) > 0)
    unless on ()
    (sum(rate(podgrace_admission_requests_total{endpoint="mutate"}[10m])) > 0)
  for: 5m
  labels:
    severity: warning
  annotations:
    summary: "Pods are created in opted-in namespaces but podgrace admits none"
    description: "For 15 minutes the API server has been calling pods.podgrace.io while no podgrace replica answered a single pod admission: the calls do not reach podgrace (Service, network policy, certificate), or podgrace is not scraped."
- alert: PodgraceNotReady
  expr: |
    max by (namespace, pod) (kube_pod_status_ready{condition="true", namespace="{{ $ns }}", pod=~"{{ $pods }}"}) == 0
  for: 10m
  labels:
    severity: warning
  annotations:
    summary: "podgrace pod {{ include "podgrace.promLabel" "pod" }} is not ready"
    description: "{{ include "podgrace.promLabel" "namespace" }}/{{ include "podgrace.promLabel" "pod" }} has not been ready for 10 minutes: it has not loaded the policies (it cannot list the policy ConfigMaps) or is not running."
{{- end }}

{{/*
The rule groups: the alerts above without the disabled ones, each with the extra labels and its
runbook_url.
*/}}
{{- define "podgrace.ruleGroups" -}}
{{- $p := .Values.metrics.prometheusRule }}
{{- $rules := list }}
{{- range (include "podgrace.alertRules" . | fromYamlArray) }}
{{- if not (has .alert $p.disabledAlerts) }}
{{- $labels := mergeOverwrite (deepCopy ($p.additionalAlertLabels | default dict)) .labels }}
{{- $annotations := set .annotations "runbook_url" (printf "%s#%s" $p.runbookBaseURL (lower .alert)) }}
{{- $rules = append $rules (merge (dict "labels" $labels "annotations" $annotations) .) }}
{{- end }}
{{- end }}
groups:
  - name: podgrace
    rules:
      {{- toYaml $rules | nindent 6 }}
{{- end }}
