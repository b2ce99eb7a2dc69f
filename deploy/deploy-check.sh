#!/usr/bin/env bash
# `make deploy-check`: before the first deploy to an account (and before real traffic), what
# to ask AWS for. It only reads; it needs the AWS CLI and credentials for the account.
#
# - Lambda concurrency: new accounts get a reduced concurrent-executions quota (AWS raises it
#   with use). Below what the stack uses at its throttle limits, resize throttles (each throttle
#   spends one of an upload's 5 receives: healthy uploads reach the DLQ) and the API answers 5xx.
# - CloudFront: an unverified account cannot create a distribution ("Your account must be
#   verified before you can add new CloudFront resources"): the first deploy fails at
#   WebDistribution. No API reports verification; a distribution that exists proves it.
set -euo pipefail
region=${1:?usage: deploy-check.sh REGION [STACK]}
stack=${2:-snapglow}

# What the stack uses at once at its limits: resize's mapping cap (20), one invocation per
# shard for each of the two stream consumers (StreamShards, 2 by default) and for the relay
# (a few table stream shards), and the API at its route limit (100 requests/s x up to 1 s).
needed=130
default_quota=1000

limit=$(aws lambda get-account-settings --region "$region" --query AccountLimit.ConcurrentExecutions --output text)
unreserved=$(aws lambda get-account-settings --region "$region" --query AccountLimit.UnreservedConcurrentExecutions --output text)
echo "Lambda in $region: $limit concurrent executions ($unreserved unreserved); $stack uses up to about $needed at its throttle limits."
if (( limit < default_quota )); then
  code=$(aws service-quotas list-service-quotas --region "$region" --service-code lambda \
    --query "Quotas[?QuotaName=='Concurrent executions'].QuotaCode | [0]" --output text)
  echo "  REQUEST before real traffic: the default of $default_quota (this account has the reduced quota of a new one):"
  echo "    aws service-quotas request-service-quota-increase --region $region --service-code lambda --quota-code $code --desired-value $default_quota"
  if (( unreserved < needed )); then
    echo "  Until then resize throttles under load (healthy uploads walk to the DLQ) and the API answers 5xx."
  fi
else
  echo "  ok"
fi

distributions=$(aws cloudfront list-distributions --query 'DistributionList.Quantity' --output text)
if [[ "$distributions" =~ ^[1-9] ]]; then
  echo "CloudFront: this account has $distributions distribution(s), so it is verified. ok"
else
  echo "CloudFront: this account has no distribution, and no API says whether it may create one."
  echo "  If the account is new, open a support case (Account and billing) asking to verify it for CloudFront"
  echo "  before the first deploy: otherwise the create fails at WebDistribution and rolls back."
fi

echo "Cognito: the user pool sends email with Cognito's own sender (about 50 a day): configure SES"
echo "  (the pool's EmailConfiguration) before real sign-ups."
