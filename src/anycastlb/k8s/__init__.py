"""The Kubernetes controller (`anycastlb controller`): our Services in, load balancers and status out."""
