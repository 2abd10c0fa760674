{{/* Chart name, overridable with nameOverride. */}}
{{- define "neurocorr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-wide name prefix; component objects append -worker, -nats, ... (kept under 40 so they fit in 63). */}}
{{- define "neurocorr.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: (dict "ctx" $ "component" "worker"). */}}
{{- define "neurocorr.componentName" -}}
{{- printf "%s-%s" (include "neurocorr.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "neurocorr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "neurocorr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "neurocorr.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "neurocorr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: neurocorr
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of a component's objects and pods: (dict "ctx" $ "component" "worker"). */}}
{{- define "neurocorr.componentLabels" -}}
{{ include "neurocorr.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "neurocorr.componentSelector" -}}
{{ include "neurocorr.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "neurocorr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "neurocorr.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "neurocorr.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "neurocorr.workerImage" -}}
{{- if .Values.gpu.enabled -}}
{{- printf "%s:%s" .Values.gpu.image.repository (default .Chart.AppVersion .Values.gpu.image.tag) -}}
{{- else -}}
{{- include "neurocorr.image" . -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- services */}}

{{- define "neurocorr.natsUrl" -}}
{{- if .Values.nats.external.url -}}
{{- .Values.nats.external.url -}}
{{- else -}}
{{- printf "nats://%s.%s.svc.%s:%v" (include "neurocorr.componentName" (dict "ctx" . "component" "nats")) .Release.Namespace .Values.clusterDomain .Values.nats.port -}}
{{- end -}}
{{- end -}}

{{/* host:port of NATS's monitoring port, for KEDA. */}}
{{- define "neurocorr.natsMonitoringEndpoint" -}}
{{- if .Values.nats.external.url -}}
{{- .Values.nats.external.monitoringEndpoint -}}
{{- else -}}
{{- printf "%s.%s.svc.%s:%v" (include "neurocorr.componentName" (dict "ctx" . "component" "nats")) .Release.Namespace .Values.clusterDomain .Values.nats.monitoringPort -}}
{{- end -}}
{{- end -}}

{{- define "neurocorr.redisUrl" -}}
{{- if .Values.redis.external.url -}}
{{- .Values.redis.external.url -}}
{{- else -}}
{{- printf "redis://%s.%s.svc.%s:%v" (include "neurocorr.componentName" (dict "ctx" . "component" "redis")) .Release.Namespace .Values.clusterDomain .Values.redis.port -}}
{{- end -}}
{{- end -}}

{{/* The port of a service URL: (dict "url" "nats://h:4222" "default" 4222). */}}
{{- define "neurocorr.urlPort" -}}
{{- $host := (urlParse .url).host -}}
{{- if regexMatch ":[0-9]+$" $host -}}
{{- regexFind "[0-9]+$" $host -}}
{{- else -}}
{{- .default -}}
{{- end -}}
{{- end -}}

{{/* ---------------------------------------------------------------- credentials
Secrets are mounted as files under /etc/neurocorr and named by flags; no value ever appears in args or env.
*/}}

{{/* NATS credential and TLS flags of a role (worker | coordinator), as a JSON list: (dict "ctx" $ "role" "worker"). */}}
{{- define "neurocorr.natsArgs" -}}
{{- $nats := .ctx.Values.nats -}}
{{- $auth := index $nats.auth .role -}}
{{- $args := list -}}
{{- if eq $auth.type "creds" -}}
{{- $args = list "--nats-creds" "/etc/neurocorr/nats/creds" -}}
{{- else if eq $auth.type "password" -}}
{{- $args = list "--nats-user" $auth.user "--nats-password-file" "/etc/neurocorr/nats/password" -}}
{{- else if eq $auth.type "token" -}}
{{- $args = list "--nats-token-file" "/etc/neurocorr/nats/token" -}}
{{- else if eq $auth.type "nkey" -}}
{{- $args = list "--nats-nkey-file" "/etc/neurocorr/nats/nkey" -}}
{{- end -}}
{{- if $nats.tls.existingSecret -}}
{{- $args = concat $args (list "--nats-ca" "/etc/neurocorr/nats-tls/ca.crt") -}}
{{- if $nats.tls.clientCert -}}
{{- $args = concat $args (list "--nats-cert" "/etc/neurocorr/nats-tls/tls.crt" "--nats-key" "/etc/neurocorr/nats-tls/tls.key") -}}
{{- end -}}
{{- end -}}
{{- toJson $args -}}
{{- end -}}

{{/* The volumes behind natsArgs, as YAML list items. */}}
{{- define "neurocorr.natsVolumes" -}}
{{- $nats := .ctx.Values.nats -}}
{{- $auth := index $nats.auth .role -}}
{{- if ne $auth.type "none" }}
- name: nats-credentials
  secret:
    secretName: {{ $auth.existingSecret }}
    defaultMode: 288 # 0440: the pod's group (fsGroup) reads it
    items:
      - key: {{ default $auth.type $auth.secretKey }}
        path: {{ $auth.type }}
{{- end }}
{{- if $nats.tls.existingSecret }}
- name: nats-tls
  secret:
    secretName: {{ $nats.tls.existingSecret }}
    defaultMode: 288
    items:
      - key: {{ $nats.tls.caKey }}
        path: ca.crt
      {{- if $nats.tls.clientCert }}
      - key: {{ $nats.tls.certKey }}
        path: tls.crt
      - key: {{ $nats.tls.keyKey }}
        path: tls.key
      {{- end }}
{{- end }}
{{- end -}}

{{- define "neurocorr.natsMounts" -}}
{{- $nats := .ctx.Values.nats -}}
{{- if ne (index $nats.auth .role).type "none" }}
- name: nats-credentials
  mountPath: /etc/neurocorr/nats
  readOnly: true
{{- end }}
{{- if $nats.tls.existingSecret }}
- name: nats-tls
  mountPath: /etc/neurocorr/nats-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Redis credential and TLS flags, as a JSON list. */}}
{{- define "neurocorr.redisArgs" -}}
{{- $redis := .Values.redis -}}
{{- $args := list -}}
{{- if $redis.auth.user -}}
{{- $args = list "--redis-user" $redis.auth.user -}}
{{- end -}}
{{- if $redis.auth.existingSecret -}}
{{- $args = concat $args (list "--redis-password-file" "/etc/neurocorr/redis/password") -}}
{{- end -}}
{{- if $redis.tls.existingSecret -}}
{{- $args = concat $args (list "--redis-ca" "/etc/neurocorr/redis-tls/ca.crt") -}}
{{- end -}}
{{- toJson $args -}}
{{- end -}}

{{- define "neurocorr.redisVolumes" -}}
{{- $redis := .Values.redis -}}
{{- if $redis.auth.existingSecret }}
- name: redis-credentials
  secret:
    secretName: {{ $redis.auth.existingSecret }}
    defaultMode: 288
    items:
      - key: {{ $redis.auth.passwordKey }}
        path: password
{{- end }}
{{- if $redis.tls.existingSecret }}
- name: redis-tls
  secret:
    secretName: {{ $redis.tls.existingSecret }}
    defaultMode: 288
    items:
      - key: {{ $redis.tls.caKey }}
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "neurocorr.redisMounts" -}}
{{- if .Values.redis.auth.existingSecret }}
- name: redis-credentials
  mountPath: /etc/neurocorr/redis
  readOnly: true
{{- end }}
{{- if .Values.redis.tls.existingSecret }}
- name: redis-tls
  mountPath: /etc/neurocorr/redis-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Flags every coordinator-side command (coordinator, zoo) shares, as a JSON list. */}}
{{- define "neurocorr.clusterArgs" -}}
{{- $args := list "--nats" (include "neurocorr.natsUrl" .) "--redis" (include "neurocorr.redisUrl" .) -}}
{{- $args = concat $args (list "--ack-wait" (toString .Values.queue.ackWaitSeconds) "--max-deliver" (toString .Values.queue.maxDeliver)) -}}
{{- $args = concat $args (list "--service-timeout" (toString .Values.serviceTimeoutSeconds) "--stall-timeout" (toString .Values.stallTimeoutSeconds)) -}}
{{- $args = concat $args (include "neurocorr.natsArgs" (dict "ctx" . "role" "coordinator") | fromJsonArray) -}}
{{- $args = concat $args (include "neurocorr.redisArgs" . | fromJsonArray) -}}
{{- toJson $args -}}
{{- end -}}

{{/* ---------------------------------------------------------------- pods */}}

{{/* Environment of every neurocorr container: the root filesystem is read-only, so home is the /tmp emptyDir. */}}
{{- define "neurocorr.env" -}}
- name: HOME
  value: /tmp
{{- end -}}

{{/* A claim's name: the existing one, or the chart's: (dict "ctx" $ "claim" .Values.results "component" "results"). */}}
{{- define "neurocorr.claimName" -}}
{{- default (include "neurocorr.componentName" (dict "ctx" .ctx "component" .component)) .claim.existingClaim -}}
{{- end -}}

{{/* storageClassName from a value: empty leaves the cluster's default, "-" asks for none (static volumes). */}}
{{- define "neurocorr.storageClass" -}}
{{- if eq . "-" -}}
storageClassName: ""
{{- else if . -}}
storageClassName: {{ . | quote }}
{{- end -}}
{{- end -}}

{{/* Settings the schema cannot express across values. */}}
{{- define "neurocorr.validate" -}}
{{- $builtinNats := not .Values.nats.external.url -}}
{{- if and $builtinNats (or (ne .Values.nats.auth.worker.type "none") (ne .Values.nats.auth.coordinator.type "none") .Values.nats.tls.existingSecret) -}}
{{- fail "nats.auth and nats.tls are for an external NATS (nats.external.url): the built-in one runs without them, behind its NetworkPolicy" -}}
{{- end -}}
{{- if and (not .Values.redis.external.url) (or .Values.redis.auth.existingSecret .Values.redis.auth.user .Values.redis.tls.existingSecret) -}}
{{- fail "redis.auth and redis.tls are for an external Redis (redis.external.url): the built-in one runs without them, behind its NetworkPolicy" -}}
{{- end -}}
{{- if and .Values.keda.enabled (not $builtinNats) (not .Values.nats.external.monitoringEndpoint) -}}
{{- fail "keda.enabled with nats.external.url needs nats.external.monitoringEndpoint (host:8222 of that server's monitoring port)" -}}
{{- end -}}
{{- end -}}

{{/* Jobs of coordinator-side commands: bad input or usage (exit 2) fails the Job at once, since a retry
would fail the same way; evictions and node drains do not count against backoffLimit. */}}
{{- define "neurocorr.podFailurePolicy" -}}
podFailurePolicy:
  rules:
    - action: FailJob
      onExitCodes:
        containerName: {{ . }}
        operator: In
        values: [2]
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
{{- end -}}
