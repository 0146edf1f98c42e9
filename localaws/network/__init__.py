"""The network model: what an execution environment can reach, decided as AWS's VPC decides it.

Shared machinery, like the sandbox: created once by the application and handed to the services that run
code (Lambda's engine, SageMaker's containers). It knows nothing of them. Its parts:

- :mod:`.addresses`: the addresses an environment sees (one per AWS service, the Runtime API, published
  internet hosts) and the SDK's ``AWS_ENDPOINT_URL_<SERVICE>`` variables;
- :mod:`.internet`: the internet hosts an operator publishes (``LOCALAWS_INTERNET_HOSTS``);
- :mod:`.placement`, :mod:`.routes`, :mod:`.security_groups`, :mod:`.reachability`: the evaluator over
  moto's EC2 model (subnets, route tables, gateway and interface endpoints, NAT gateways, security
  groups);
- :mod:`.efs`: whether a cold start reaches its EFS mount target, with Lambda's ``EFSMount*`` errors;
- :mod:`.netns`: a network namespace per environment from Python (loopback up, unmodelled traffic sent
  nowhere, listeners created inside and handed to the server);
- :mod:`.bpf`: the socket filter that makes a denied connection time out, as AWS's drop does;
- :mod:`.guard`: the WSGI check of each request's signature scope against the address it was sent to;
- :mod:`.plane`: the server's side of every environment's listeners (handoff to the server's own request
  handler, relay to internet hosts, filters switched as the model changes);
- :mod:`.status`: whether namespaces are available here, and the one sentence that says what is not
  enforced when they are not.

Importing this package imports neither moto nor werkzeug; the modules that read moto's model import it
when called.
"""
