"""Evaluate a ValidatingAdmissionPolicy's CEL as the API server does, with cel-python.

stdin: {"spec": <the policy's spec>, "cases": [{"request": {...}, "object": {...},
"oldObject": {...}}, ...]}. stdout: one JSON list, per case {"applies": bool,
"denied": [message, ...]} (applies: every matchCondition is true; denied: the
validations that are false, with their message or messageExpression). Variables are
evaluated in order and given to later expressions as `variables.<name>`.
"""
import json
import sys

import celpy


def evaluate(env, text, activation):
    program = env.program(env.compile(text))
    return program.evaluate(activation)


def run_case(spec, case):
    env = celpy.Environment()
    activation = {
        "request": celpy.json_to_cel(case["request"]),
        "object": celpy.json_to_cel(case["object"]),
        "oldObject": celpy.json_to_cel(case["oldObject"]),
    }
    for condition in spec.get("matchConditions", []):
        if not bool(evaluate(env, condition["expression"], activation)):
            return {"applies": False, "denied": []}
    variables = {}
    for variable in spec.get("variables", []):
        activation["variables"] = celpy.json_to_cel(variables)
        variables[variable["name"]] = evaluate(env, variable["expression"], activation)
    activation["variables"] = celpy.celtypes.MapType(
        {celpy.celtypes.StringType(k): v for k, v in variables.items()}
    )
    denied = []
    for validation in spec.get("validations", []):
        result = evaluate(env, validation["expression"], activation)
        if isinstance(result, Exception) or not bool(result):
            if "messageExpression" in validation:
                denied.append(str(evaluate(env, validation["messageExpression"], activation)))
            else:
                denied.append(validation.get("message", validation["expression"]))
    return {"applies": True, "denied": denied}


def main():
    document = json.load(sys.stdin)
    print(json.dumps([run_case(document["spec"], case) for case in document["cases"]]))


main()
