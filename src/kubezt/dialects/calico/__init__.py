"""The Calico dialect: selector expressions and Calico policy resources."""
