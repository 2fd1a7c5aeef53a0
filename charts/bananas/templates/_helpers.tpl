{{/*
The chart's name, truncated to 63 characters (the limit of a label value).
*/}}
{{- define "bananas.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: "<release>-<chart>", or just the release name when it already
contains the chart name; truncated to 63 characters (DNS label limit).
*/}}
{{- define "bananas.fullname" -}}
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
"<chart>-<version>" for the helm.sh/chart label.
*/}}
{{- define "bananas.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of one component's objects: "<fullname>-<component>", within 63 characters.
Call with (dict "context" $ "component" "operator").
*/}}
{{- define "bananas.componentName" -}}
{{- $full := include "bananas.fullname" .context | trunc (int (sub 62 (len .component))) | trimSuffix "-" }}
{{- printf "%s-%s" $full .component }}
{{- end }}

{{/*
Selector labels: the immutable subset a Deployment or StatefulSet selects its pods by.
Call with (dict "context" $ "component" "operator").
*/}}
{{- define "bananas.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bananas.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Common labels of every object. Call with (dict "context" $ "component" "operator").
*/}}
{{- define "bananas.labels" -}}
helm.sh/chart: {{ include "bananas.chart" .context }}
{{ include "bananas.selectorLabels" . }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: bananas
{{- with .context.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
"repository:tag" of an image block, the tag defaulting to the chart's appVersion.
Call with (dict "image" .Values.operator.image "context" $).
*/}}
{{- define "bananas.image" -}}
{{- printf "%s:%s" .image.repository (default .context.Chart.AppVersion .image.tag) }}
{{- end }}

{{/*
The operator's ServiceAccount name.
*/}}
{{- define "bananas.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bananas.componentName" (dict "context" . "component" "operator")) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The ClusterRole the operator binds to scheduler pods.
*/}}
{{- define "bananas.schedulerRole" -}}
{{- include "bananas.componentName" (dict "context" . "component" "scheduler") }}
{{- end }}

{{/*
The pod-level settings every component shares: pull secrets, scheduling, security.
Call with (dict "values" .Values.operator).
*/}}
{{- define "bananas.podScheduling" -}}
{{- with .values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The operator's rights inside a namespace it watches: in its ClusterRole when it
watches the whole cluster, in a Role per namespace when operator.watchNamespaces
is set.
*/}}
{{- define "bananas.operatorNamespacedRules" }}
  # Watch our resources; patch them for kopf's annotations and finalizers.
  - apiGroups: [bananas.dev]
    resources: [workerpools, cronschedules]
    verbs: [get, list, watch, patch]
  - apiGroups: [bananas.dev]
    resources: [workerpools/status, cronschedules/status]
    verbs: [get, patch]
  # Owner references with blockOwnerDeletion need this on the owner.
  - apiGroups: [bananas.dev]
    resources: [workerpools/finalizers, cronschedules/finalizers]
    verbs: [update]
  # The children, written by server-side apply (create + patch), read back with get.
  # Deployments are also listed and watched (label managed-by=bananas-operator, so
  # only ours are sent): the autoscaler reads them from memory, not a GET per poll.
  - apiGroups: [apps]
    resources: [deployments]
    verbs: [get, list, watch, create, patch]
  - apiGroups: [policy]
    resources: [poddisruptionbudgets]
    verbs: [get, create, patch]
  - apiGroups: [""]
    resources: [serviceaccounts]
    verbs: [get, create, patch]
  - apiGroups: [rbac.authorization.k8s.io]
    resources: [rolebindings]
    verbs: [get, create, patch]
  # May bind the scheduler's ClusterRole (and only that one) without holding its rights.
  - apiGroups: [rbac.authorization.k8s.io]
    resources: [clusterroles]
    verbs: [bind]
    resourceNames: [{{ include "bananas.schedulerRole" . }}]
  # Pods: listed to see why a rollout is stuck and which pods are busy; patched
  # only for controller.kubernetes.io/pod-deletion-cost (idle pods go first).
  - apiGroups: [""]
    resources: [pods]
    verbs: [list, patch]
  # The Redis URL a WorkerPool or CronSchedule names: one Secret read at a time, never listed.
  - apiGroups: [""]
    resources: [secrets]
    verbs: [get]
  # Every decision is an Event.
  - apiGroups: ["", events.k8s.io]
    resources: [events]
    verbs: [create, patch]
{{- end }}
