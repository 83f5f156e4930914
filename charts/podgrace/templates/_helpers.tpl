{{/*
Chart name, truncated to the 63 characters of a label value.
*/}}
{{- define "podgrace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every resource. "podgrace" for a release named podgrace.
*/}}
{{- define "podgrace.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "podgrace.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "podgrace.labels" -}}
helm.sh/chart: {{ include "podgrace.chart" . }}
{{ include "podgrace.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: podgrace
{{- end }}

{{/*
Selector labels (Deployment selector, Service, PDB, anti-affinity). Never change them: a
Deployment's selector is immutable.
*/}}
{{- define "podgrace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podgrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "podgrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "podgrace.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image: repository@digest when a digest is set, else repository:tag (tag defaults to the
chart's appVersion). The preStop helper image of the cluster policy is the same image.
*/}}
{{- define "podgrace.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The ConfigMap holding the cluster default policy. Deliberately NOT "<fullname>-policy": with the
usual release name "podgrace" that would be "podgrace-policy", the name of the namespace policy
ConfigMaps, so the cluster default would also be watched, cached and validated as the namespace
policy of the release namespace.
*/}}
{{- define "podgrace.clusterPolicyName" -}}
{{- printf "%s-cluster-policy" (include "podgrace.fullname" . | trunc 48 | trimSuffix "-") }}
{{- end }}

{{/*
The Secret with the serving certificate (tls.crt, tls.key): the user's own in mode secret,
"<fullname>-certs" in mode self (created and kept by podgrace itself, never by the chart), and
"<fullname>-tls" otherwise (written by Helm or by cert-manager). Mode self has a name of its own so
that moving between modes never has two owners write one Secret.
*/}}
{{- define "podgrace.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "self" }}
{{- printf "%s-certs" (include "podgrace.fullname" . | trunc 57 | trimSuffix "-") }}
{{- else if eq .Values.certificates.mode "secret" }}
{{- required "certificates.secretName is required when certificates.mode is secret: the name of an existing kubernetes.io/tls Secret in the release namespace (see certs/README.md)" .Values.certificates.secretName }}
{{- else }}
{{- printf "%s-tls" (include "podgrace.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}
{{- end }}

{{- define "podgrace.serviceName" -}}
{{- include "podgrace.fullname" . }}
{{- end }}

{{/*
The DNS names the API server may use for the Service.
*/}}
{{- define "podgrace.dnsNames" -}}
{{- $svc := include "podgrace.serviceName" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/*
cert-manager objects.
*/}}
{{- define "podgrace.certManager.servingCertificateName" -}}
{{- printf "%s-serving" (include "podgrace.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "podgrace.certManager.caSecretName" -}}
{{- printf "%s-ca" (include "podgrace.fullname" . | trunc 60 | trimSuffix "-") }}
{{- end }}

{{/*
Annotations of both webhook configurations: in certManager mode, cainjector writes the CA of the
serving Certificate into their caBundle.
*/}}
{{- define "podgrace.webhookAnnotations" -}}
{{- if eq .Values.certificates.mode "certManager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "podgrace.certManager.servingCertificateName" .) }}
{{- end }}
{{- end }}

{{/*
The cluster default policy: .Values.policy with helperImage defaulting to this chart's image.
*/}}
{{- define "podgrace.clusterPolicy" -}}
{{- $policy := deepCopy (.Values.policy | default dict) }}
{{- $helper := dict "image" (include "podgrace.image" .) "pullPolicy" .Values.image.pullPolicy }}
{{- $_ := set $policy "helperImage" (mergeOverwrite $helper ($policy.helperImage | default dict)) }}
{{- toYaml $policy }}
{{- end }}

{{/*
Seconds the pod gets after SIGTERM: the drain (readiness fails, requests still accepted), the
in-flight requests' allowance, and 5 seconds of margin.
*/}}
{{- define "podgrace.terminationGracePeriodSeconds" -}}
{{- add (int .Values.server.drainSeconds) (int .Values.server.shutdownTimeoutSeconds) 5 }}
{{- end }}

{{/*
The metrics port: the webhook's own (https) or the plain-HTTP one (http).
*/}}
{{- define "podgrace.metricsPort" -}}
{{- if eq .Values.metrics.scheme "http" }}{{ .Values.metrics.httpPort }}{{ else }}8443{{ end }}
{{- end }}

{{/*
The annotations of Prometheus's annotation-based discovery (values metrics.podAnnotations).
*/}}
{{- define "podgrace.prometheusAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ include "podgrace.metricsPort" . | quote }}
prometheus.io/scheme: {{ .Values.metrics.scheme | quote }}
prometheus.io/path: /metrics
{{- end }}

{{/*
Replicas at least: the HPA's minimum when it is enabled.
*/}}
{{- define "podgrace.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicas }}{{ end }}
{{- end }}
