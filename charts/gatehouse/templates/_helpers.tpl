{{/* Names and labels shared by every template. */}}

{{/* The operator's name: Deployment, Services, ServiceAccount, RBAC, and --service-name (it names the certificate). */}}
{{- define "gatehouse.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-operator" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Selector labels never change after install (a Deployment's selector is immutable). */}}
{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: gatehouse-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gatehouse.labels" -}}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/part-of: gatehouse
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "gatehouse.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the serving certificate: the operator's own, or cert-manager's. */}}
{{- define "gatehouse.tlsSecretName" -}}
{{- if .Values.certManager.enabled -}}
{{- printf "%s-tls" (include "gatehouse.fullname" .) -}}
{{- else -}}
gatehouse-webhook-tls
{{- end -}}
{{- end -}}

{{/* The webhook configuration names are fixed: the operator patches caBundle into exactly these. */}}
{{- define "gatehouse.mutatingWebhookName" -}}gatehouse-sidecar-injector{{- end -}}
{{- define "gatehouse.validatingWebhookName" -}}gatehouse-validation{{- end -}}
{{- define "gatehouse.approvalsWebhookName" -}}gatehouse-accessrequest-decisions{{- end -}}

{{/* The Secret the operator reads the approval notification URLs from (they carry tokens), when there is one. */}}
{{- define "gatehouse.notificationsSecretName" -}}
{{- $notifications := .Values.approvals.notifications -}}
{{- if $notifications.existingSecret -}}
{{- $notifications.existingSecret -}}
{{- else if or $notifications.webhookUrl $notifications.slackUrl -}}
{{- printf "%s-approval-notifications" (include "gatehouse.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The client config every webhook shares. */}}
{{- define "gatehouse.webhookClientConfig" -}}
service:
  namespace: {{ .root.Release.Namespace }}
  name: {{ include "gatehouse.fullname" .root }}
  path: {{ .path }}
  port: 443
{{- end -}}

{{- define "gatehouse.certManagerAnnotation" -}}
{{- if .Values.certManager.enabled -}}
annotations:
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "gatehouse.fullname" .) }}
{{- end -}}
{{- end -}}
