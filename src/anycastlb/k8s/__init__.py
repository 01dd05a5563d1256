"""The Kubernetes controller (`anycastlb controller`): Services of our class in, load balancers and status out."""
