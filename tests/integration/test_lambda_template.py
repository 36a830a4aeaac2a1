#!/usr/bin/env python3
"""lambda/template.yaml: valid for CloudFormation (cfn-lint, with the SAM
transform), the right runtime and handler, a Prefix that cannot be empty,
and a role that may read only that prefix."""

import json
import os
import re
import shutil
import subprocess

import harness

TEMPLATE = os.path.join(harness.SRCDIR, "lambda", "template.yaml")


def _load():
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def tag(loader, suffix, node):
            name = "Ref" if suffix == "Ref" else "Fn::" + suffix
            if isinstance(node, yaml.ScalarNode):
                return {name: loader.construct_scalar(node)}
            if isinstance(node, yaml.SequenceNode):
                return {name: loader.construct_sequence(node, deep=True)}
            return {name: loader.construct_mapping(node, deep=True)}

        Loader.add_multi_constructor("!", tag)
        with open(TEMPLATE) as f:
            return yaml.load(f, Loader=Loader)
    return json.loads(json.dumps(cfn_yaml.load(TEMPLATE)))


class TestTemplate(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.t = _load()
        self.fn = self.t["Resources"]["Function"]

    def test_function_properties(self):
        self.assertEqual(self.t["Transform"], "AWS::Serverless-2016-10-31")
        self.assertEqual(self.fn["Type"], "AWS::Serverless::Function")
        p = self.fn["Properties"]
        self.assertEqual(p["Runtime"], "provided.al2023")
        self.assertEqual(p["Handler"], "bootstrap")
        self.assertEqual(p["Architectures"], ["x86_64"])
        self.assertEqual(p["CodeUri"], "ssm-sign-proxy-function.zip")
        self.assertEqual(p["Environment"]["Variables"]["SSM_SIGN_PROXY_PREFIX"], {"Ref": "Prefix"})
        self.assertEqual(p["Timeout"], {"Ref": "Timeout"})
        self.assertEqual(p["MemorySize"], {"Ref": "MemorySize"})
        self.assertIn("FunctionArn", self.t["Outputs"])

    def test_response_mode(self):
        param = self.t["Parameters"]["ResponseMode"]
        self.assertEqual(param["Default"], "buffered")
        self.assertEqual(sorted(param["AllowedValues"]), ["buffered", "streaming"])
        env = self.fn["Properties"]["Environment"]["Variables"]
        self.assertEqual(env["SSM_SIGN_PROXY_RESPONSE_MODE"], {"Ref": "ResponseMode"})

    def test_prefix_cannot_be_empty_or_malformed(self):
        param = self.t["Parameters"]["Prefix"]
        self.assertNotIn("Default", param)
        pat = re.compile(param["AllowedPattern"])
        for bad in ("", "/", "//", "/a", "a/", "a//b", "a b", "a:b", "a*", "*"):
            self.assertIsNone(pat.fullmatch(bad), "Prefix %r accepted" % bad)
        for good in ("ssm-sign-proxy", "team/prod", "a.b_c-d/E1"):
            self.assertIsNotNone(pat.fullmatch(good), "Prefix %r refused" % good)

    def test_policy_allows_only_the_prefix(self):
        policies = self.fn["Properties"]["Policies"]
        self.assertEqual(len(policies), 1)
        stmts = policies[0]["Statement"]
        actions = sorted(a for s in stmts for a in s["Action"])
        self.assertEqual(actions, ["kms:Decrypt", "ssm:GetParameters", "ssm:GetParametersByPath"])
        for s in stmts:
            self.assertEqual(s["Effect"], "Allow")
            if "ssm:GetParametersByPath" in s["Action"]:
                res = sorted(r["Fn::Sub"] for r in s["Resource"])
                base = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${Prefix}"
                self.assertEqual(res, [base, base + "/*"])
            else:
                self.assertEqual(s["Condition"]["StringEquals"]["kms:ViaService"],
                                 {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"})

    def test_sam_transform_yields_the_role(self):
        try:
            from samtranslator.translator.transform import transform
        except ImportError:
            self.skipTest("aws-sam-translator (samtranslator) is not installed")

        class NoManagedPolicies:
            def load(self):
                return {}

        t = json.loads(json.dumps(self.t))
        t["Resources"]["Function"]["Properties"]["CodeUri"] = "s3://bucket/ssm-sign-proxy-function.zip"
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        out = transform(t, {"Prefix": "team/prod"}, NoManagedPolicies())
        role = out["Resources"]["FunctionRole"]["Properties"]
        self.assertEqual(role["ManagedPolicyArns"],
                         ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"])
        stmts = role["Policies"][0]["PolicyDocument"]["Statement"]
        self.assertEqual(sorted(a for s in stmts for a in s["Action"]),
                         ["kms:Decrypt", "ssm:GetParameters", "ssm:GetParametersByPath"])
        fn = out["Resources"]["Function"]["Properties"]
        self.assertEqual(fn["Runtime"], "provided.al2023")
        self.assertEqual(fn["Handler"], "bootstrap")

    def test_cfn_lint_clean(self):
        exe = shutil.which("cfn-lint")
        if exe is None:
            self.skipTest("cfn-lint is not installed")
        # cfn-lint checks that CodeUri exists: lint a copy next to a dummy zip.
        d = self.tmp
        shutil.copy(TEMPLATE, os.path.join(d, "template.yaml"))
        open(os.path.join(d, "ssm-sign-proxy-function.zip"), "wb").close()
        r = subprocess.run([exe, os.path.join(d, "template.yaml")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120, env=dict(os.environ, AWS_DEFAULT_REGION="us-east-1"))
        self.assertEqual(r.returncode, 0, r.stdout.decode("utf-8", "replace"))


if __name__ == "__main__":
    harness.main()
