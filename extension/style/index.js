import './base.css';
import './serving.css';
