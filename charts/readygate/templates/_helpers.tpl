{{/*
Chart name, truncated to 63 characters (the DNS label limit of object names and label values).
*/}}
{{- define "readygate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, plus the chart name unless the release name already contains it.
*/}}
{{- define "readygate.fullname" -}}
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

{{/*
Chart name and version for the helm.sh/chart label.
*/}}
{{- define "readygate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The labels the chart itself sets on every object; commonLabels and podLabels may not set these keys.
*/}}
{{- define "readygate.chartLabels" -}}
helm.sh/chart: {{ include "readygate.chart" . }}
{{ include "readygate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: readygate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels on every object: the chart's own and commonLabels.
*/}}
{{- define "readygate.labels" -}}
{{ include "readygate.chartLabels" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of an object with labels of its own (extra): the chart's, then commonLabels and extra merged,
extra winning, so that no key appears twice. Takes (list $ extra).
*/}}
{{- define "readygate.labelsWith" -}}
{{- $root := index . 0 }}
{{- include "readygate.chartLabels" $root }}
{{- with merge (dict) (index . 1 | default (dict)) ($root.Values.commonLabels | default (dict)) }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: stable across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "readygate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "readygate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the operator runs as.
*/}}
{{- define "readygate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "readygate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository@digest when a digest is set, else repository:tag (tag defaults to appVersion).
*/}}
{{- define "readygate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Rules the operator needs wherever it watches pods and ProbePolicies: the whole cluster (ClusterRole)
or each watched namespace (Role). Least privilege: reads through informers, writes only pod status
(its own condition), policy status and Events. pods/exec, secrets and configmaps are opt-ins.
*/}}
{{- define "readygate.watchRules" -}}
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [readygate.dev]
  resources: [probepolicies]
  verbs: [get, list, watch]
- apiGroups: [readygate.dev]
  resources: [probepolicies/status]
  verbs: [get, update, patch]
{{- if .Values.exec.enabled }}
- apiGroups: [""]
  resources: [pods/exec]
  verbs: [create, get]
{{- end }}
{{- if .Values.tls.allowSecretCA }}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
{{- if .Values.tls.allowConfigMapCA }}
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
{{- end }}
{{- end }}

{{/*
Milliseconds of a duration value, as `readygate run` computes them (parseDuration in
src/cli/options.ts: the number times its unit, rounded half up). values.schema.json allows at most 3
decimals, so mulf's decimal product is within rounding of the binary's floating-point one and both
round to the same integer.
*/}}
{{- define "readygate.durationMs" -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" . }}
{{- $unit := trimPrefix $n . }}
{{- $factor := get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit }}
{{- round (mulf (float64 $n) $factor) 0 | int64 }}
{{- end }}

{{/*
Cross-field checks that JSON Schema cannot phrase clearly (values.schema.json checks each field).
Every template includes it first: Helm renders templates in an order of its own and stops at the
first failure, so each refusal reads the same whichever template meets the bad value first.
*/}}
{{- define "readygate.validate" -}}
{{- if and (not (kindIs "invalid" .Values.watchNamespaces)) (not (kindIs "slice" .Values.watchNamespaces)) }}
{{- fail (printf "watchNamespaces must be a list of namespace names, got %q (a %s): use --set 'watchNamespaces={%v}' (several: --set 'watchNamespaces={shop,billing}'), or watchNamespaces: [%v] in a values file" (toString .Values.watchNamespaces) (kindOf .Values.watchNamespaces) .Values.watchNamespaces .Values.watchNamespaces) }}
{{- end }}
{{- include "readygate.validateWatchedNamespacesExist" . }}
{{- if .Values.leaderElection.enabled }}
{{- $le := .Values.leaderElection }}
{{- $retry := include "readygate.durationMs" $le.retryPeriod | int64 }}
{{- $renew := include "readygate.durationMs" $le.renewDeadline | int64 }}
{{- $lease := include "readygate.durationMs" $le.leaseDuration | int64 }}
{{- if not (and (lt $retry $renew) (lt $renew $lease)) }}
{{- fail (printf "leaderElection needs retryPeriod < renewDeadline < leaseDuration (readygate run refuses anything else, and the pod would crash-loop); got retryPeriod=%s (%d ms), renewDeadline=%s (%d ms), leaseDuration=%s (%d ms)" $le.retryPeriod $retry $le.renewDeadline $renew $le.leaseDuration $lease) }}
{{- end }}
{{- end }}
{{- $graceMs := include "readygate.durationMs" .Values.shutdownGrace | int64 }}
{{- $needSeconds := div (add $graceMs 5000 999) 1000 }}
{{- if lt (int64 .Values.terminationGracePeriodSeconds) $needSeconds }}
{{- fail (printf "shutdownGrace=%s needs terminationGracePeriodSeconds of at least %d, got %d: readygate exits at most shutdownGrace + 5 s after SIGTERM, and the kubelet kills it terminationGracePeriodSeconds after SIGTERM; raise terminationGracePeriodSeconds or lower shutdownGrace" .Values.shutdownGrace $needSeconds (int64 .Values.terminationGracePeriodSeconds)) }}
{{- end }}
{{- $owned := keys (include "readygate.chartLabels" . | fromYaml) | sortAlpha }}
{{- range $value := list "commonLabels" "podLabels" }}
{{- range $key := $owned }}
{{- if hasKey (get $.Values $value | default (dict)) $key }}
{{- fail (printf "%s may not set %s: the chart sets that label itself" $value $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (not (kindIs "invalid" $pdb.minAvailable)) (not (kindIs "invalid" $pdb.maxUnavailable)) }}
{{- fail (printf "podDisruptionBudget.minAvailable=%v and podDisruptionBudget.maxUnavailable=%v are both set: a PodDisruptionBudget takes one of them; set the other to null (--set podDisruptionBudget.minAvailable=null)" $pdb.minAvailable $pdb.maxUnavailable) }}
{{- end }}
{{- range $i, $v := .Values.extraVolumes }}
{{- if eq (toString $v.name) "tmp" }}
{{- fail (printf "extraVolumes[%d] is named tmp: the chart mounts its own tmp volume at /tmp (the root filesystem is read-only); choose another name" $i) }}
{{- end }}
{{- end }}
{{- range $i, $m := .Values.extraVolumeMounts }}
{{- if eq (trimSuffix "/" (toString $m.mountPath)) "/tmp" }}
{{- fail (printf "extraVolumeMounts[%d] mounts at /tmp, where the chart mounts its own tmp volume; choose another mountPath" $i) }}
{{- end }}
{{- end }}
{{- if and .Values.admissionPolicy.enabled (semverCompare "<1.30.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "admissionPolicy.enabled=true needs Kubernetes 1.30 or newer (ValidatingAdmissionPolicy v1), this is %s: set admissionPolicy.enabled=false, and then only let users who may exec into pods and read Secrets create ProbePolicies" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- $injection := toString .Values.injection.enabled }}
{{- if not (has $injection (list "auto" "true" "false")) }}
{{- fail (printf "injection.enabled must be auto, true or false, got %q" $injection) }}
{{- end }}
{{- if and (eq $injection "true") (not (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy")) }}
{{- fail (printf "injection.enabled=true needs a cluster that serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (Kubernetes 1.36 or newer), and this one (Kubernetes %s) does not list it among its API versions: set injection.enabled=auto or false (auto injects wherever the cluster serves it; false: list the gate in pod templates by hand). helm template without a cluster: pass --api-versions admissionregistration.k8s.io/v1/MutatingAdmissionPolicy when the target cluster serves it" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount=%d needs leaderElection.enabled=true: without a Lease every replica would probe and patch pods" (int .Values.replicaCount)) }}
{{- end }}
{{- include "readygate.validateSharding" . }}
{{- end }}

{{/*
Sharding (docs/sharding.md): what `readygate run --shard-buckets` refuses, and a bucket count that
would leave replicas idle. values.schema.json bounds buckets too; this also holds with
--skip-schema-validation.
*/}}
{{- define "readygate.validateSharding" -}}
{{- if .Values.sharding.enabled }}
{{- $buckets := int .Values.sharding.buckets }}
{{- $replicas := int .Values.replicaCount }}
{{- if not .Values.leaderElection.enabled }}
{{- fail "sharding.enabled=true needs leaderElection.enabled=true: the bucket Leases reuse its namespace, id and timings (readygate run refuses --shard-buckets without --leader-elect)" }}
{{- end }}
{{- if or (lt $buckets 1) (gt $buckets 256) }}
{{- fail (printf "sharding.buckets=%d is out of range: from 1 to 256 (each held bucket is a Lease its holder updates every leaderElection.retryPeriod)" $buckets) }}
{{- end }}
{{- if lt $buckets $replicas }}
{{- fail (printf "sharding.buckets=%d is below replicaCount=%d: a replica holds whole buckets, so %d replicas would idle; raise sharding.buckets or lower replicaCount" $buckets $replicas (sub $replicas $buckets)) }}
{{- end }}
{{- $longest := printf "%s-s%d-bucket-%d" .Values.leaderElection.id $buckets (sub $buckets 1) }}
{{- if gt (len $longest) 63 }}
{{- fail (printf "leaderElection.id=%s is too long for sharding: the bucket Lease %s has %d characters, at most 63 (readygate run refuses it); shorten leaderElection.id" .Values.leaderElection.id $longest (len $longest)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"true" when the chart ships gate injection (templates/gate-injection.yaml): injection.enabled true, or
auto and the cluster serves MutatingAdmissionPolicy v1 (Kubernetes 1.36+). `helm template` without
--api-versions answers auto from Helm's built-in list, which lacks it: pass
--api-versions admissionregistration.k8s.io/v1/MutatingAdmissionPolicy to render it.
*/}}
{{- define "readygate.injectionEnabled" -}}
{{- $mode := toString .Values.injection.enabled }}
{{- if eq $mode "auto" }}
{{- .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" }}
{{- else }}
{{- eq $mode "true" }}
{{- end }}
{{- end }}

{{/*
Every namespace in watchNamespaces must exist: the chart puts a Role and RoleBinding in each, and
one missing namespace would leave a failed release half applied. Checked only against a cluster:
`helm template` and client dry runs answer every lookup with nothing, so kube-system (always there)
is looked up first to tell a cluster from none.
*/}}
{{- define "readygate.validateWatchedNamespacesExist" -}}
{{- if and (kindIs "slice" .Values.watchNamespaces) (lookup "v1" "Namespace" "" "kube-system") }}
{{- $missing := list }}
{{- range .Values.watchNamespaces }}
{{- if not (lookup "v1" "Namespace" "" (toString .)) }}
{{- $missing = append $missing (toString .) }}
{{- end }}
{{- end }}
{{- if $missing }}
{{- fail (printf "watchNamespaces names namespaces this cluster does not have: %s. The chart puts a Role and RoleBinding in each, so create them first (kubectl create namespace %s) or leave them out of watchNamespaces" (join ", " $missing) (join " " $missing)) }}
{{- end }}
{{- end }}
{{- end }}
